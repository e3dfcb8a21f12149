/** normalizeMessage on WAMessage objects of the shapes Baileys delivers (test/fixtures). */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { normalizeMessage } from '../src/normalize.js';
import type { RawWAMessage } from '../src/normalize.js';
import { jidToE164, normalizeE164 } from '../src/transport.js';

const FIXTURES = path.resolve(import.meta.dirname, '../../test/fixtures');
const load = (name: string): RawWAMessage => JSON.parse(readFileSync(path.join(FIXTURES, `${name}.json`), 'utf8')) as RawWAMessage;
/** The linked account, as Baileys reports it in sock.user (with a device suffix). */
const OWN = { jid: '15550000001:12@s.whatsapp.net', lid: '208431200442187:12@lid' };
const ALICE = '+15550000002';
const norm = (name: string, own: Parameters<typeof normalizeMessage>[1] = OWN) => normalizeMessage(load(name), own);

describe('normalizeMessage', () => {
  test('plain text (conversation)', () => {
    assert.deepEqual(norm('text-conversation'), {
      chatId: '15550000002@s.whatsapp.net', senderE164: ALICE, senderLid: null, isGroup: false, isFromMe: false, isStatusBroadcast: false,
      isSelfChat: false, text: 'status', kind: 'text', id: '3EB0C431D8B5A3F2E1A7', timestamp: 1732200000,
    });
  });

  test('extended text', () => {
    const m = norm('extended-text')!;
    assert.equal(m.kind, 'text');
    assert.equal(m.text, 'log 5');
    assert.equal(m.senderE164, ALICE);
  });

  test('image with caption: kind image, caption as text', () => {
    const m = norm('image-caption')!;
    assert.equal(m.kind, 'image');
    assert.equal(m.text, 'status');
    assert.deepEqual({ kind: norm('image-no-caption')!.kind, text: norm('image-no-caption')!.text }, { kind: 'image', text: null });
  });

  test('other media kinds', () => {
    assert.deepEqual([norm('sticker')!.kind, norm('sticker')!.text], ['sticker', null]);
    assert.deepEqual([norm('voice-note')!.kind, norm('voice-note')!.text], ['audio', null]);
    assert.deepEqual([norm('document-caption')!.kind, norm('document-caption')!.text], ['document', 'read this']);
    assert.deepEqual([norm('video')!.kind, norm('video')!.text], ['video', 'look']);
    assert.deepEqual([norm('location')!.kind, norm('location')!.text], ['other', null]);
  });

  test('group: chat is the group, sender is the participant', () => {
    const m = norm('group-text')!;
    assert.equal(m.isGroup, true);
    assert.equal(m.chatId, '120363025246125486@g.us');
    assert.equal(m.senderE164, ALICE);
    assert.equal(m.text, 'status');
    assert.equal(m.isSelfChat, false);
  });

  test('group addressed by LID: the number comes from participantAlt', () => {
    const m = norm('group-lid')!;
    assert.equal(m.isGroup, true);
    assert.equal(m.senderE164, ALICE);
  });

  test('direct chat addressed by LID: the number comes from remoteJidAlt', () => {
    const m = norm('dm-lid')!;
    assert.equal(m.chatId, '104257358999812@lid');
    assert.equal(m.senderE164, ALICE);
    assert.equal(m.isSelfChat, false);
  });

  test('direct chat addressed by LID without a phone number: senderLid only', () => {
    const m = norm('dm-lid-only')!;
    assert.equal(m.senderE164, null);
    assert.equal(m.senderLid, '104257358999812@lid');
    assert.equal(norm('dm-lid')!.senderLid, '104257358999812@lid');
    assert.equal(norm('group-lid')!.senderLid, '104257358999812@lid');
  });

  test('broadcast list (Baileys\' decoder: the list is the chat, the sender participant, its number in remoteJidAlt)', () => {
    const m = norm('broadcast-list-lid')!;
    assert.equal(m.chatId, '1733412345@broadcast');
    assert.equal(m.isGroup, false);
    assert.equal(m.isStatusBroadcast, false);
    assert.equal(m.senderE164, ALICE);
    assert.equal(m.senderLid, '104257358999812@lid');
  });

  test('status broadcast', () => {
    const m = norm('status-broadcast')!;
    assert.equal(m.isStatusBroadcast, true);
    assert.equal(m.isGroup, false);
    assert.equal(m.senderE164, ALICE);
  });

  test('own message in the "message yourself" chat (phone-number JID, device suffix ignored)', () => {
    const m = norm('own-self-chat')!;
    assert.equal(m.isFromMe, true);
    assert.equal(m.isSelfChat, true);
    assert.equal(m.senderE164, '+15550000001');
    assert.equal(m.chatId, '15550000001@s.whatsapp.net');
    // With only the JID string, as the brief's normalizeMessage(raw, ownJid) form.
    assert.equal(norm('own-self-chat', '15550000001@s.whatsapp.net')!.isSelfChat, true);
  });

  test('own message in the "message yourself" chat addressed by the own LID', () => {
    const m = norm('own-self-chat-lid')!;
    assert.equal(m.isFromMe, true);
    assert.equal(m.isSelfChat, true);
    assert.equal(m.text, 'help');
    assert.equal(norm('own-self-chat-lid', '15550000001@s.whatsapp.net')!.isSelfChat, false, 'LID unknown: not taken for the self chat');
  });

  test('own message in another chat is from me but not the self chat', () => {
    const m = norm('own-other-chat')!;
    assert.equal(m.isFromMe, true);
    assert.equal(m.isSelfChat, false);
    assert.equal(m.senderE164, '+15550000001');
  });

  test('ephemeral wrapper and Long timestamps', () => {
    const m = norm('ephemeral-text')!;
    assert.equal(m.text, 'diff');
    assert.equal(m.kind, 'text');
    assert.equal(m.timestamp, 1732200070);
  });

  test('protocol messages, reactions, stubs and key distribution alone are not messages', () => {
    for (const name of ['protocol-revoke', 'reaction', 'stub-no-message', 'sender-key-only']) {
      assert.equal(norm(name), null, name);
    }
  });

  test('edits, contacts\' encrypted edits, pins, keeps, poll votes, encrypted reactions, call offers and settings are protocol messages: null', () => {
    // Shapes as Baileys' decoder delivers them; before, each was a message of kind 'other' ("Text commands only.").
    for (const name of ['edited-message', 'secret-encrypted-edit', 'pin-in-chat', 'keep-in-chat', 'poll-update', 'enc-reaction', 'call-offer', 'protocol-ephemeral-setting']) {
      assert.equal(norm(name), null, name);
    }
  });

  test('wrappers are unwrapped like Baileys\' normalizeMessageContent (viewOnceMessageV2Extension)', () => {
    const m = norm('view-once-v2-extension')!;
    assert.equal(m.kind, 'audio');
    assert.equal(m.text, null);
  });

  test('before the account is known (null own identity) nothing is the self chat', () => {
    const m = norm('own-self-chat', null)!;
    assert.equal(m.isSelfChat, false);
    assert.equal(m.isFromMe, true);
  });
});

describe('numbers', () => {
  test('jidToE164 and normalizeE164', () => {
    assert.equal(jidToE164('15550000002@s.whatsapp.net'), '+15550000002');
    assert.equal(jidToE164('15550000002:7@s.whatsapp.net'), '+15550000002');
    assert.equal(jidToE164('104257358999812@lid'), null);
    assert.equal(jidToE164('120363025246125486@g.us'), null);
    assert.equal(normalizeE164('+1 (555) 000-0002'), '+15550000002');
    assert.equal(normalizeE164('15550000002'), '+15550000002');
    assert.equal(normalizeE164('alice'), null);
  });
});
