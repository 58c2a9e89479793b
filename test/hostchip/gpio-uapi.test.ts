import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as uapi from '../../src/hostchip/gpio-uapi.ts';

const HEADER = '/usr/include/linux/gpio.h';

/** Compiles a C program against the system header and returns what it prints: `NAME VALUE` lines. */
function fromHeader(): Map<string, bigint> {
  const dir = mkdtempSync(join(tmpdir(), 'vgpio-uapi-'));
  try {
    const c = `#include <linux/gpio.h>
#include <stddef.h>
#include <stdio.h>
#define P(n, v) printf("%s %llu\\n", n, (unsigned long long)(v))
int main(void) {
  P("GPIO_GET_CHIPINFO_IOCTL", GPIO_GET_CHIPINFO_IOCTL);
  P("GPIO_V2_GET_LINEINFO_IOCTL", GPIO_V2_GET_LINEINFO_IOCTL);
  P("GPIO_V2_GET_LINE_IOCTL", GPIO_V2_GET_LINE_IOCTL);
  P("GPIO_V2_LINE_SET_CONFIG_IOCTL", GPIO_V2_LINE_SET_CONFIG_IOCTL);
  P("GPIO_V2_LINE_GET_VALUES_IOCTL", GPIO_V2_LINE_GET_VALUES_IOCTL);
  P("GPIO_V2_LINE_SET_VALUES_IOCTL", GPIO_V2_LINE_SET_VALUES_IOCTL);
  P("CHIPINFO_SIZE", sizeof(struct gpiochip_info));
  P("LINE_INFO_SIZE", sizeof(struct gpio_v2_line_info));
  P("LINE_CONFIG_SIZE", sizeof(struct gpio_v2_line_config));
  P("LINE_REQUEST_SIZE", sizeof(struct gpio_v2_line_request));
  P("LINE_VALUES_SIZE", sizeof(struct gpio_v2_line_values));
  P("LINE_EVENT_SIZE", sizeof(struct gpio_v2_line_event));
  P("info.lines", offsetof(struct gpiochip_info, lines));
  P("req.consumer", offsetof(struct gpio_v2_line_request, consumer));
  P("req.config", offsetof(struct gpio_v2_line_request, config));
  P("req.num_lines", offsetof(struct gpio_v2_line_request, num_lines));
  P("req.fd", offsetof(struct gpio_v2_line_request, fd));
  P("config.num_attrs", offsetof(struct gpio_v2_line_config, num_attrs));
  P("config.attrs", offsetof(struct gpio_v2_line_config, attrs));
  P("cattr.mask", offsetof(struct gpio_v2_line_config_attribute, mask));
  P("attr.values", offsetof(struct gpio_v2_line_attribute, values));
  P("linfo.consumer", offsetof(struct gpio_v2_line_info, consumer));
  P("linfo.offset", offsetof(struct gpio_v2_line_info, offset));
  P("linfo.flags", offsetof(struct gpio_v2_line_info, flags));
  P("event.id", offsetof(struct gpio_v2_line_event, id));
  P("event.offset", offsetof(struct gpio_v2_line_event, offset));
  P("event.seqno", offsetof(struct gpio_v2_line_event, seqno));
  P("event.line_seqno", offsetof(struct gpio_v2_line_event, line_seqno));
  P("FLAG_INPUT", GPIO_V2_LINE_FLAG_INPUT);
  P("FLAG_OUTPUT", GPIO_V2_LINE_FLAG_OUTPUT);
  P("FLAG_EDGE_RISING", GPIO_V2_LINE_FLAG_EDGE_RISING);
  P("FLAG_EDGE_FALLING", GPIO_V2_LINE_FLAG_EDGE_FALLING);
  P("FLAG_ACTIVE_LOW", GPIO_V2_LINE_FLAG_ACTIVE_LOW);
  P("ATTR_OUTPUT_VALUES", GPIO_V2_LINE_ATTR_ID_OUTPUT_VALUES);
  P("EVENT_RISING", GPIO_V2_LINE_EVENT_RISING_EDGE);
  P("EVENT_FALLING", GPIO_V2_LINE_EVENT_FALLING_EDGE);
  return 0;
}
`;
    writeFileSync(join(dir, 'p.c'), c);
    execFileSync('gcc', ['-o', join(dir, 'p'), join(dir, 'p.c')], { stdio: 'pipe' });
    const out = execFileSync(join(dir, 'p'), { encoding: 'utf8' });
    return new Map(
      out
        .trim()
        .split('\n')
        .map((l) => [l.split(' ')[0], BigInt(l.split(' ')[1])]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const haveCompiler = (() => {
  try {
    execFileSync('gcc', ['--version'], { stdio: 'ignore' });
    return existsSync(HEADER);
  } catch {
    return false;
  }
})();

describe('gpio-uapi against the kernel header', { skip: !haveCompiler && `needs gcc and ${HEADER}` }, () => {
  const h = haveCompiler ? fromHeader() : new Map<string, bigint>();
  const num = (k: string): number => Number(h.get(k));

  it('ioctl numbers and struct sizes match <linux/gpio.h>', () => {
    for (const k of [
      'GPIO_GET_CHIPINFO_IOCTL',
      'GPIO_V2_GET_LINEINFO_IOCTL',
      'GPIO_V2_GET_LINE_IOCTL',
      'GPIO_V2_LINE_SET_CONFIG_IOCTL',
      'GPIO_V2_LINE_GET_VALUES_IOCTL',
      'GPIO_V2_LINE_SET_VALUES_IOCTL',
      'CHIPINFO_SIZE',
      'LINE_INFO_SIZE',
      'LINE_CONFIG_SIZE',
      'LINE_REQUEST_SIZE',
      'LINE_VALUES_SIZE',
      'LINE_EVENT_SIZE',
    ] as const)
      assert.equal(uapi[k], num(k), k);
    assert.equal(uapi.LineFlag.INPUT, h.get('FLAG_INPUT'));
    assert.equal(uapi.LineFlag.OUTPUT, h.get('FLAG_OUTPUT'));
    assert.equal(uapi.LineFlag.EDGE_RISING, h.get('FLAG_EDGE_RISING'));
    assert.equal(uapi.LineFlag.EDGE_FALLING, h.get('FLAG_EDGE_FALLING'));
    assert.equal(uapi.LineFlag.ACTIVE_LOW, h.get('FLAG_ACTIVE_LOW'));
    assert.equal(uapi.LineAttrId.OUTPUT_VALUES, num('ATTR_OUTPUT_VALUES'));
    assert.equal(uapi.LineEventId.RISING_EDGE, num('EVENT_RISING'));
    assert.equal(uapi.LineEventId.FALLING_EDGE, num('EVENT_FALLING'));
  });

  it('a one-line request puts offset, consumer, flags, OUTPUT_VALUES and num_lines where the kernel reads them', () => {
    const b = uapi.encodeLineRequest(5, 'vgpio', { flags: uapi.LineFlag.OUTPUT, outputValue: 1 });
    const v = new DataView(b.buffer);
    const cfg = num('req.config');
    const attr0 = cfg + num('config.attrs');
    assert.equal(v.getUint32(0, true), 5);
    assert.equal(
      new TextDecoder().decode(b.subarray(num('req.consumer'), num('req.consumer') + 6)),
      'vgpio\0',
    );
    assert.equal(v.getBigUint64(cfg, true), uapi.LineFlag.OUTPUT);
    assert.equal(v.getUint32(cfg + num('config.num_attrs'), true), 1);
    assert.equal(v.getUint32(attr0, true), uapi.LineAttrId.OUTPUT_VALUES);
    assert.equal(v.getBigUint64(attr0 + num('attr.values'), true), 1n);
    assert.equal(v.getBigUint64(attr0 + num('cattr.mask'), true), 1n);
    assert.equal(v.getUint32(num('req.num_lines'), true), 1);
    v.setInt32(num('req.fd'), 42, true);
    assert.equal(uapi.requestFdOf(b), 42);
    // An input carries no attribute: nothing to drive.
    const input = uapi.encodeLineConfig({ flags: uapi.LineFlag.INPUT | uapi.LineFlag.EDGE_RISING });
    assert.equal(new DataView(input.buffer).getUint32(num('config.num_attrs'), true), 0);
  });

  it("line info and events decode from the header's offsets", () => {
    const info = new Uint8Array(uapi.LINE_INFO_SIZE);
    const iv = new DataView(info.buffer);
    info.set(new TextEncoder().encode('led'), 0);
    info.set(new TextEncoder().encode('gpioset'), num('linfo.consumer'));
    iv.setUint32(num('linfo.offset'), 3, true);
    iv.setBigUint64(num('linfo.flags'), 1n | uapi.LineFlag.OUTPUT, true);
    assert.deepEqual(uapi.decodeLineInfo(info), { name: 'led', consumer: 'gpioset', offset: 3, flags: 9n });

    const ev = new Uint8Array(2 * uapi.LINE_EVENT_SIZE);
    const ew = new DataView(ev.buffer);
    const at = uapi.LINE_EVENT_SIZE;
    ew.setBigUint64(at, 123456789n, true);
    ew.setUint32(at + num('event.id'), 2, true);
    ew.setUint32(at + num('event.offset'), 7, true);
    ew.setUint32(at + num('event.seqno'), 9, true);
    ew.setUint32(at + num('event.line_seqno'), 4, true);
    const events = uapi.decodeLineEvents(ev.subarray(0, ev.length - 1)); // a partial record is ignored
    assert.equal(events.length, 1);
    const all = uapi.decodeLineEvents(ev);
    assert.deepEqual(all[1], { timestampNs: 123456789n, id: 2, offset: 7, seqno: 9, lineSeqno: 4 });
  });
});

describe('ioctl encoding check', () => {
  it('accepts the generic _IOC architectures and refuses the others by name', () => {
    for (const arch of ['x64', 'arm64', 'arm', 'riscv64']) uapi.checkIoctlEncoding(arch);
    for (const arch of ['mips', 'mipsel', 'ppc64'])
      assert.throws(
        () => uapi.checkIoctlEncoding(arch),
        (e: unknown) => e instanceof Error && e.message.includes(`not supported on ${arch}`),
      );
  });
});
