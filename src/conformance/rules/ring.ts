// The split ring under the GPIO messages: descriptor layouts and notification suppression
// (virtio 1.2 §2.7).
import { Direction, MessageType, Status } from '../../protocol/constants.ts';
import { within } from '../probe.ts';
import { fail, warn, type Rule } from '../rule.ts';
import { LINE, call, ok, release } from './rule-steps.ts';

const FRAMING = '"The device MUST NOT make assumptions about the particular arrangement of descriptors"';

export const layoutSplit: Rule = {
  id: 'layout.split',
  clause: 'virtio 1.2 §2.7.4.1',
  quote: FRAMING,
  strength: 'MUST',
  title: 'request over 3 descriptors, response over 2',
  async run(ctx) {
    const p = await ctx.open({ indirect: false });
    await ok(ctx, p, MessageType.SET_VALUE, LINE, 1, { split: [2, 2, 4], writable: [1, 1] });
    await ok(ctx, p, MessageType.SET_DIRECTION, LINE, Direction.OUT, { split: [3, 5] });
    // A direction is configured state, not a sensed level: reading OUT back shows the split value arrived.
    const d = await ok(ctx, p, MessageType.GET_DIRECTION, LINE, 0, { split: [2, 2, 4], writable: [1, 1] });
    if (d !== Direction.OUT) fail(`GET_DIRECTION read ${d} after a split SET_DIRECTION OUT`);
    await ok(ctx, p, MessageType.GET_VALUE, LINE, 0, { split: [2, 6], writable: [1, 1] });
    await release(ctx, p);
    return 'split [2,2,4] + [1,1], [3,5] + [2] and [2,6] + [1,1]';
  },
};

export const layoutBytewise: Rule = {
  id: 'layout.bytewise',
  clause: 'virtio 1.2 §2.7.4.1',
  quote: `${FRAMING} (10 descriptors is within any "reasonable limit")`,
  strength: 'MUST',
  title: 'request as 8 one-byte descriptors',
  async run(ctx) {
    const p = await ctx.open({ indirect: false });
    const r = await call(ctx, p, MessageType.GET_DIRECTION, LINE, 0, {
      split: [1, 1, 1, 1, 1, 1, 1, 1],
      writable: [1, 1],
    });
    if (r.status !== Status.OK) fail('GET_DIRECTION over 8+2 one-byte descriptors answered ERR');
    return `direction ${r.value}`;
  },
};

export const layoutIndirect: Rule = {
  id: 'layout.indirect',
  clause: 'virtio 1.2 §2.7.5.3.2',
  quote: 'when INDIRECT_DESC is offered: "MUST handle ... a single descriptor with ... INDIRECT"',
  strength: 'MUST',
  title: 'request through an indirect table',
  needs: ['indirect'],
  async run(ctx) {
    const p = await ctx.open();
    await ok(ctx, p, MessageType.GET_DIRECTION, LINE, 0, { indirect: true });
    await ok(ctx, p, MessageType.GET_DIRECTION, LINE, 0, {
      indirect: true,
      split: [2, 6],
      writable: [1, 1],
    });
    return 'plain and split chains in indirect tables';
  },
};

export const eventIdx: Rule = {
  id: 'event-idx',
  clause: 'virtio 1.2 §2.7.7.2',
  quote: '"[used idx] equal to used_event, the device MUST send a notification"; else SHOULD NOT',
  strength: 'MUST',
  title: 'EVENT_IDX: notify when used idx passes used_event (and not before: SHOULD)',
  needs: ['event-idx'],
  async run(ctx) {
    const p = await ctx.open({ irq: false });
    await ok(ctx, p, MessageType.GET_DIRECTION, LINE);
    const q = p.requestq;
    const before = p.interrupts[0];
    const base = q.collectedIndex;
    const target = (base + 3) & 0xffff;
    // Ask to be notified only when the 3rd of the next requests is used.
    q.setUsedEvent(base + 2);
    const done = [0, 1, 2].map(() => p.request(MessageType.GET_DIRECTION, LINE, 0));
    const start = Date.now();
    while (q.deviceUsedIndex !== target && p.interrupts[0] === before && Date.now() - start < ctx.replyMs)
      await new Promise((r) => setTimeout(r, 2));
    if (p.interrupts[0] !== before && q.collectedIndex !== target)
      warn('notified before used idx passed used_event');
    if (q.deviceUsedIndex !== target) fail('the device did not use the 3 requests');
    await new Promise((r) => setTimeout(r, 50));
    if (p.interrupts[0] === before) fail('no notification although used idx passed used_event');
    await within(Promise.all(done), ctx.replyMs);
    if (p.interrupts[0] - before > 1) warn(`${p.interrupts[0] - before} notifications for one used_event`);
    return 'one notification for three used buffers';
  },
};
