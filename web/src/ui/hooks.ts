import { useEffect, useReducer, useRef, useState } from 'preact/hooks';
import { model } from '../state';
import { errorText } from '../model';

/** Re-renders the caller whenever the model changes. */
export function useModel(): typeof model {
  const [, bump] = useReducer((x: number) => x + 1, 0);
  useEffect(() => model.subscribe(() => { bump(0); }), []);
  return model;
}

export interface Loaded<T> {
  data: T | null;
  error: string | null;
  loading: boolean;
  reload: () => void;
}

/** Runs a request when online and whenever deps change (the connection's
 * epoch is always one: a new session reloads). Keeps the last data while
 * reloading, so a refresh does not blank the screen. */
export function useRequest<T>(fn: (() => Promise<T>) | null, deps: unknown[]): Loaded<T> {
  const online = model.conn?.status.phase === 'online';
  const epoch = model.conn?.epoch ?? 0;
  const [state, setState] = useState<{ data: T | null; error: string | null; loading: boolean }>({ data: null, error: null, loading: false });
  const [tick, setTick] = useState(0);
  const seq = useRef(0);
  useEffect(() => {
    if (!online || !fn) return;
    const mine = ++seq.current;
    setState((s) => ({ ...s, loading: true }));
    fn().then(
      (data) => {
        if (mine === seq.current) setState({ data, error: null, loading: false });
      },
      (e: unknown) => {
        if (mine === seq.current) setState((s) => ({ data: s.data, error: errorText(e), loading: false }));
      },
    );
  }, [online, epoch, tick, ...deps]);
  return { ...state, reload: () => { setTick((t) => t + 1); } };
}
