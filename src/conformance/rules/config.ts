// Configuration space and the line names block (virtio 1.2 §5.18.4, §5.18.6.1).
import { MessageType, Status } from '../../protocol/constants.ts';
import { decodeNames } from '../../protocol/names.ts';
import { within } from '../probe.ts';
import { fail, warn, type Rule } from '../rule.ts';
import { S, checkUsedLength } from './rule-steps.ts';

export const configFields: Rule = {
  id: 'config.fields',
  clause: S('4'),
  quote: 'padding "is set to zero by the device" (descriptive, no MUST)',
  strength: 'SHOULD',
  title: 'config space: padding zero',
  async run(ctx) {
    const p = await ctx.open();
    if (p.padding !== 0) fail(`padding is 0x${p.padding.toString(16)}, should be 0`);
    return `ngpio=${p.ngpio} gpio_names_size=${p.namesSize}`;
  },
};

export const namesBlock: Rule = {
  id: 'names.block',
  clause: S('6.9'),
  quote: '"The strings MUST be zero-terminated and an unique (if available)"; size = gpio_names_size',
  strength: 'MUST',
  title: 'GET_LINE_NAMES: 1+N bytes, ngpio NUL-terminated unique names',
  async run(ctx) {
    const p = await ctx.open();
    if (p.namesSize === 0) return 'device has no names (gpio_names_size 0)';
    const c = await within(
      p.request(MessageType.GET_LINE_NAMES, 0, 0, { writable: [1 + p.namesSize] }),
      ctx.replyMs,
    );
    if (!c) return fail('no reply');
    if (c.data[0] !== Status.OK) fail('answered ERR although gpio_names_size > 0');
    const block = c.data.subarray(1, 1 + p.namesSize);
    // 7-bit ASCII is descriptive (§5.18.6.1); zero-termination and uniqueness are the MUSTs.
    const ascii = block.every((b) => b <= 0x7f);
    const names = decodeNames(ascii ? block : block.map((b) => (b > 0x7f ? 0x3f : b)), p.ngpio);
    if (!names) return fail(`names block is not ${p.ngpio} NUL-terminated strings`);
    const named = names.filter((n) => n !== '');
    if (new Set(named).size !== named.length) fail('names are not unique');
    checkUsedLength('GET_LINE_NAMES', c.len, 1 + p.namesSize);
    if (!ascii) warn('names are not 7-bit ASCII (§5.18.6.1 says they are encoded so)');
    return `${named.length} of ${p.ngpio} lines named`;
  },
};
