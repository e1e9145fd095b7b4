import type { InstalledRecord } from '../schema/parse-journal.js';
import type { HookName } from './add-packet.js';
import type { AgentContext } from './agent-ports.js';
import { packetPaths } from './packet-paths.js';
import type { HookResult } from './run-hook.js';

export const defaultHookTimeoutSeconds = 300;

/**
 * Runs one of a packet's hooks, if it has that hook, in the packet's slot with the GITFLEET_* environment,
 * for the step in flight (its previous slot and hook id come from the journal).
 */
export async function runPacketHook(
  ctx: AgentContext,
  packet: InstalledRecord,
  hook: HookName,
): Promise<HookResult | undefined> {
  const path = packet.hooks[hook];
  if (path === undefined) return undefined;
  const paths = packetPaths(ctx.root, packet.name);
  const { slot } = packet;
  const step = ctx.journal.journal.step;
  const previousSlot = step?.previousSlot ?? null;
  const hookId = step?.hookId;
  const result = await ctx.ports.runHook({
    hook,
    path,
    slot: paths.slot(slot),
    env: {
      GITFLEET_PACKET: packet.name,
      GITFLEET_VERSION: packet.labels.version ?? '',
      GITFLEET_SLOT: paths.slot(slot),
      GITFLEET_DATA: paths.data,
      GITFLEET_PREVIOUS_SLOT: previousSlot === null ? '' : paths.slot(previousSlot),
      // Inherited by everything the hook starts: recovery finds what a killed agent left running by it.
      ...(hookId === undefined ? {} : { GITFLEET_HOOK_ID: hookId }),
    },
    timeoutMs: (packet.hooks.timeoutSeconds ?? defaultHookTimeoutSeconds) * 1000,
  });
  ctx.ports.log.log(result.ok ? 'info' : 'warn', result.message, { packet: packet.name, hook });
  return result;
}
