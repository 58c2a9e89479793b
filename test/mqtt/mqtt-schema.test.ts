// The board file's mqtt section: every bad field named by its JSON path (through parseConfigFile,
// as vgpio serve --config reads it).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfigFile } from '../../src/daemon/serve-config.ts';

const F = 'board.json';
const devices = [{ socket: '/tmp/a.sock', name: 'a', lines: 4 }];

const issues = (mqtt: unknown): string[] => {
  try {
    parseConfigFile(F, JSON.stringify({ devices, mqtt }));
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    return e.message.split('\n');
  }
  return [];
};

describe('the mqtt section of a board file', () => {
  it('accepts a full section', () => {
    assert.deepEqual(
      issues({
        url: 'mqtts://broker.lan:8883',
        clientId: 'lab-1',
        username: 'daemon',
        password: 'secret',
        ca: 'ca.pem',
        cert: 'client.pem',
        key: 'client.key',
        prefix: 'lab/host1',
        qos: 0,
        publish: ['a:0', 'a:1'],
        commands: ['a:1'],
        homeAssistant: true,
        wires: [
          { from: 'a:0', topic: 'lab/links/x' },
          { topic: 'lab/host2/b/0/state', to: ['a:2', 'a:3'] },
        ],
        reconnect: { minMs: 100, maxMs: 5000 },
      }),
      [],
    );
  });

  it('names each bad field by its path', () => {
    assert.deepEqual(issues({ url: 'http://broker' }), [
      `${F}: mqtt.url: expected an mqtt:// or mqtts:// broker URL, got "http://broker"`,
    ]);
    assert.deepEqual(issues({ url: 'mqtt://b', qos: 2 }), [`${F}: mqtt.qos: expected a QoS of 0 or 1`]);
    assert.deepEqual(issues({ url: 'mqtt://b', prefix: 'lab/#' }), [
      `${F}: mqtt.prefix: expected a topic without wildcards (#, +) or NUL`,
    ]);
    assert.deepEqual(issues({ url: 'mqtt://b', prefix: 'lab/' }), [
      `${F}: mqtt.prefix: expected a topic prefix without a leading or trailing "/"`,
    ]);
    assert.deepEqual(issues({ url: 'mqtt://b', commands: ['a1'] }), [
      `${F}: mqtt.commands[0]: expected a line reference "DEVICE:LINE" (a device name, then an offset or a line name)`,
    ]);
    assert.deepEqual(issues({ url: 'mqtt://b', password: 'x' }), [
      `${F}: mqtt.password: expected "username" with "password"`,
    ]);
    assert.deepEqual(issues({ url: 'mqtt://b', cert: 'c.pem' }), [
      `${F}: mqtt.key: expected both "cert" and "key" for a TLS client certificate`,
      `${F}: mqtt.url: expected an mqtts:// URL with "ca"/"cert"/"key"`,
    ]);
    assert.deepEqual(issues({ url: 'mqtt://b', wires: [{ from: 'a:0' }] }), [
      `${F}: mqtt.wires[0]: expected a wire end {"from": "DEVICE:LINE", "topic": T} or {"topic": T, "to": "DEVICE:LINE"}`,
    ]);
    assert.deepEqual(issues({ url: 'mqtt://b', brokr: 1 }), [`${F}: mqtt: Unrecognized key: "brokr"`]);
  });
});
