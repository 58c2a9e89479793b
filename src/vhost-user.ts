// `vgpio/vhost-user`: the vhost-user front-end (drive any back-end from Node), the back-end server,
// and one simulated chip served with its control endpoint. Loads the native addon.
export { VhostUserFrontend, VhostUserError, type FrontendOptions } from './transports/vhost-user/frontend.ts';
export { VhostUserServer, type VhostUserServerOptions } from './transports/vhost-user/server.ts';
export { ServedDevice, type DeviceConfig } from './daemon/served-device.ts';
