// Child side of the eventfd ping-pong floor: waits on fd 3, answers on fd 4, through the native layer.
import { FdPoller, eventfdRead, eventfdWrite, getCpu, setAffinity } from '../native/index.ts';

const cpu = process.env.VGPIO_ECHO_CPU;
if (cpu !== undefined && cpu !== '') setAffinity([Number(cpu)]);
const poller = new FdPoller(3, (err, readable) => {
  if (err) process.exit(1);
  if (!readable) return;
  while (eventfdRead(3) !== null);
  eventfdWrite(4, 1n);
});
poller.start(true, false);
process.send?.({ ready: true, cpu: getCpu() });
