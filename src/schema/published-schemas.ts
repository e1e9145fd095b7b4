import agentSchema from './json/agent.schema.json' with { type: 'json' };
import deviceSchema from './json/device.schema.json' with { type: 'json' };
import fleetSchema from './json/fleet.schema.json' with { type: 'json' };
import installedSchema from './json/installed.schema.json' with { type: 'json' };
import packetSchema from './json/packet.schema.json' with { type: 'json' };
import specSchema from './json/spec.schema.json' with { type: 'json' };
import statusSchema from './json/status.schema.json' with { type: 'json' };

/**
 * The JSON Schemas of the files people and devices write, by file name, as `gitfleet init` publishes them
 * for editors (`# yaml-language-server: $schema=schemas/<name>`). The journal's schema is the agent's own.
 */
export const publishedSchemas: Readonly<Record<string, object>> = {
  'agent.schema.json': agentSchema,
  'device.schema.json': deviceSchema,
  'fleet.schema.json': fleetSchema,
  'installed.schema.json': installedSchema,
  'packet.schema.json': packetSchema,
  'spec.schema.json': specSchema,
  'status.schema.json': statusSchema,
};
