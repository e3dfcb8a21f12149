/* A list that renders only the rows in view (and a few around), with
 * @tanstack/virtual-core doing the arithmetic: a 5,000-line diff or a
 * megabyte of task output scrolls like a short one. Rows have one fixed
 * height; long lines scroll sideways. Positions are set through the CSSOM
 * (style objects), which the page's CSP allows. */
import type { ComponentChildren } from 'preact';
import { useEffect, useLayoutEffect, useReducer, useRef, useState } from 'preact/hooks';
import { Virtualizer, elementScroll, observeElementOffset, observeElementRect } from '@tanstack/virtual-core';

interface Props {
  count: number;
  rowHeight: number;
  row: (index: number) => ComponentChildren;
  label: string;
  className?: string;
  /** Keep the end in view while more rows arrive (task output). */
  follow?: boolean;
  /** Changes when rows change without the count changing. */
  version?: number;
  /** Scroll this row into view once (a search hit, a chosen line). */
  scrollTo?: number;
}

export function VirtualList({ count, rowHeight, row, label, className, follow, version, scrollTo }: Props) {
  const ref = useRef<HTMLDivElement>(null);
  const [, rerender] = useReducer((x: number) => x + 1, 0);
  const [v] = useState(
    () =>
      new Virtualizer<HTMLDivElement, HTMLDivElement>({
        count,
        getScrollElement: () => ref.current,
        estimateSize: () => rowHeight,
        scrollToFn: elementScroll,
        observeElementRect,
        observeElementOffset,
        overscan: 12,
        onChange: () => {
          rerender(0);
        },
      }),
  );
  v.setOptions({ ...v.options, count, estimateSize: () => rowHeight });
  useLayoutEffect(() => v._didMount(), [v]);
  useLayoutEffect(() => {
    v._willUpdate();
  });
  const atEnd = useRef(true);
  useEffect(() => {
    const el = ref.current;
    if (!follow || !el) return;
    if (atEnd.current) el.scrollTop = el.scrollHeight;
  }, [follow, count, version]);
  useEffect(() => {
    if (scrollTo !== undefined && scrollTo >= 0 && scrollTo < count) v.scrollToIndex(scrollTo, { align: 'center' });
  }, [scrollTo]);
  const onScroll = () => {
    const el = ref.current;
    if (el) atEnd.current = el.scrollHeight - el.scrollTop - el.clientHeight < rowHeight * 2;
  };
  const items = v.getVirtualItems();
  return (
    <div ref={ref} class={`vlist ${className ?? ''}`} role="region" aria-label={label} tabIndex={0} onScroll={onScroll}>
      <div class="vlist-inner" style={{ height: `${v.getTotalSize()}px` }}>
        {items.map((it) => (
          <div key={it.key} class="vrow" style={{ transform: `translateY(${it.start}px)`, height: `${rowHeight}px` }}>
            {row(it.index)}
          </div>
        ))}
      </div>
    </div>
  );
}
