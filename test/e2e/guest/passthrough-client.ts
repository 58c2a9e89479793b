// Runs INSIDE the pass-through test's guest (bundled with the package into its initramfs): a
// vhost-user front-end that sends raw requestq messages to a back-end and prints each reply, so the
// test sees exactly what a driver gets for a busy or vanished host line.
// Usage: node client.js SOCKET TYPE:LINE[:VALUE]...   (TYPE: SET_DIRECTION, GET_VALUE, ...)
// Prints one line per message: `TYPE LINE VALUE -> OK v` or `... -> ERR`; exits 0 unless it cannot talk.
import { GpioDriver } from '../../../src/driver/gpio-driver.ts';
import { MessageType, Status, VIRTIO_ID_GPIO } from '../../../src/protocol/constants.ts';
import { decodeResponse } from '../../../src/protocol/messages.ts';
import { VhostUserFrontend } from '../../../src/transports/vhost-user/frontend.ts';

const [socket, ...steps] = process.argv.slice(2);
if (!socket || steps.length === 0) {
  process.stderr.write('usage: client.js SOCKET TYPE:LINE[:VALUE]...\n');
  process.exit(2);
}
const transport = await VhostUserFrontend.connect(socket, VIRTIO_ID_GPIO, { timeoutMs: 20_000 });
const driver = await GpioDriver.open(transport);
for (const step of steps) {
  const [name, line, value = '0'] = step.split(':');
  const type = MessageType[name as keyof typeof MessageType];
  if (type === undefined) throw new Error(`unknown message type ${name}`);
  const r = await driver.raw(type, Number(line), Number(value));
  const resp = decodeResponse(r.data, r.len);
  const answer = resp.status === Status.OK ? `OK ${resp.value}` : 'ERR';
  process.stdout.write(`${name} ${line} ${value} -> ${answer}\n`);
}
await driver.close();
process.exit(0);
