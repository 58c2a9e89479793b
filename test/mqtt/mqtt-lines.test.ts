// The mqtt section resolved against the served devices: bad references named by path, a line a
// topic drives claimed on the board (the control socket's input refused), conflicts refused.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Board } from '../../src/board/board.ts';
import { GpioDevice } from '../../src/device/gpio-device.ts';
import { layoutBridge, MqttConfigError, type BridgedDevice } from '../../src/mqtt/mqtt-lines.ts';

function devicesOn(board: Board): BridgedDevice[] {
  return board.deviceNames.map((name) => {
    const lines = board.lines(name);
    return { name, gpio: new GpioDevice(lines), lines };
  });
}

const boardOf = () =>
  Board.create({
    devices: [
      { name: 'a', lines: 4, names: ['led', 'btn'] },
      { name: 'b', lines: 2 },
    ],
    wires: [{ from: 'a:0', to: 'b:0' }],
  });

describe('layoutBridge', () => {
  it('publishes every line by default, under PREFIX/DEVICE/LINE', () => {
    const l = layoutBridge({ url: 'mqtt://x' }, devicesOn(boardOf()), 'lab/h');
    assert.deepEqual(
      [...l.lines.values()].map((x) => x.base),
      ['lab/h/a/0', 'lab/h/a/1', 'lab/h/a/2', 'lab/h/a/3', 'lab/h/b/0', 'lab/h/b/1'],
    );
    assert.ok([...l.lines.values()].every((x) => !x.commands));
  });

  it('resolves names and offsets; a line a topic drives is claimed on the board', () => {
    const board = boardOf();
    const l = layoutBridge(
      {
        url: 'mqtt://x',
        publish: ['a:led'],
        commands: ['a:btn'],
        wires: [
          { topic: 'far/state', to: ['a:2', 'b:1'] },
          { from: 'a:led', topic: 'out' },
        ],
      },
      devicesOn(board),
      'p',
    );
    assert.deepEqual(
      [...l.lines.values()].map((x) => `${x.base}${x.commands ? ' set' : ''}`),
      ['p/a/0', 'p/a/1 set', 'p/a/2', 'p/b/1'],
    );
    assert.equal(l.wiresOut[0].topic, 'out');
    assert.throws(
      () => board.lines('b').setInput(1, 1),
      /driven by MQTT topic far\/state: it cannot also be set by hand/,
    );
    board.lines('a').setInput(1, 1); // the commanded line stays free
  });

  it('names every bad reference and conflict, and claims nothing then', () => {
    const board = boardOf();
    assert.throws(
      () =>
        layoutBridge(
          {
            url: 'mqtt://x',
            publish: ['c:0'],
            commands: ['a:9', 'a:btn', 'b:0'],
            wires: [
              { topic: 't1', to: 'b:0' },
              { topic: 't2', to: ['a:btn', 'a:3'] },
              { topic: 't3', to: 'a:3' },
              { from: 'a:nope', topic: 't4' },
            ],
          },
          devicesOn(board),
          'p',
        ),
      (e: unknown) => {
        assert.ok(e instanceof MqttConfigError);
        assert.deepEqual(e.message.split('\n'), [
          'mqtt.publish[0]: no device "c" for "c:0" (devices: a, b)',
          'mqtt.commands[0]: no line 9 on a (it has 4 lines: 0..3)',
          'mqtt.commands[2]: b:0 is driven by wires[0] from a:0: it takes no commands',
          'mqtt.wires[0].to: b:0 is already driven by wires[0] from a:0',
          'mqtt.wires[1].to[0]: a:btn is already driven by its MQTT set topic (mqtt.commands)',
          'mqtt.wires[2].to: a:3 is already driven by MQTT topic t2',
          'mqtt.wires[3].from: no line named "nope" on a',
        ]);
        return true;
      },
    );
    board.lines('a').setInput(3, 1); // not claimed
  });
});
