/**
 * `npm run bench:resolve`: the desired state of a synthetic 100,000-device fleet, engine against the
 * plain reference implementation. Fails (exit 1) when they disagree on any sampled device.
 */
import { resolveFleet } from '../src/reconciler/resolve-fleet.js';
import type { DesiredState } from '../src/reconciler/resolve-desired-state.js';
import { formatLabels } from '../src/schema/labels.js';
import { generateFleet } from './generate-fleet.js';
import { canonical, referenceResolve, type CanonicalState } from './reference-resolve.js';

const SEED = 20_240_601;
const SAMPLE_EVERY = 50;

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3);
}

function outcomes(states: readonly CanonicalState[]): string {
  const ok = states.filter((s) => s.ok).length;
  const byCode = new Map<string, number>();
  for (const s of states) {
    if (!s.ok) for (const code of new Set(s.codes)) byCode.set(code, (byCode.get(code) ?? 0) + 1);
  }
  const codes = [...byCode]
    .sort()
    .map(([code, n]) => `${code}=${n}`)
    .join(' ');
  return `ok=${ok} error=${states.length - ok}${codes ? ` (devices with ${codes})` : ''}`;
}

let t = performance.now();
const { fleet, devices } = generateFleet(SEED);
console.log(
  `fleet: seed=${SEED} devices=${devices.length} specs=${fleet.specs.length} packets=${fleet.packets.length} (generated in ${seconds(performance.now() - t)} s)`,
);

// The engine: index once, resolve every device.
t = performance.now();
let states: DesiredState[] | undefined = resolveFleet(fleet, devices);
const engineMs = performance.now() - t;
const sampleIndexes = devices.map((_, i) => i).filter((i) => i % SAMPLE_EVERY === 0);
const engineSample = sampleIndexes.map((i) => canonical(states?.[i] as DesiredState));
let okCount = 0;
let okPackets = 0;
const byCode = new Map<string, number>();
for (const s of states) {
  if (s.ok) {
    okCount++;
    okPackets += s.packets.length;
  } else
    for (const code of new Set(s.errors.map((e) => e.code))) byCode.set(code, (byCode.get(code) ?? 0) + 1);
}
// Only the sample's canonical results are kept from here on.
states = undefined;
const codeCounts = [...byCode]
  .sort()
  .map(([code, n]) => `${code}=${n}`)
  .join(' ');
console.log(`engine: ${devices.length} devices in ${seconds(engineMs)} s`);
console.log(
  `engine outcomes (all devices): ok=${okCount} error=${devices.length - okCount} (devices with ${codeCounts}); ${(okPackets / Math.max(1, okCount)).toFixed(1)} packets per ok device`,
);

// The reference: every spec and every packet for every device, on a sample.
t = performance.now();
const referenceSample = sampleIndexes.map((i) =>
  referenceResolve(fleet, devices[i] as (typeof devices)[number]),
);
const referenceSampleMs = performance.now() - t;
const referenceMs = (referenceSampleMs * devices.length) / sampleIndexes.length;
console.log(
  `reference: ${sampleIndexes.length} devices (every ${SAMPLE_EVERY}th) in ${seconds(referenceSampleMs)} s; extrapolated to ${devices.length} devices: ${seconds(referenceMs)} s`,
);

// The oracle check.
for (let k = 0; k < sampleIndexes.length; k++) {
  const engine = engineSample[k];
  const reference = referenceSample[k];
  if (JSON.stringify(engine) !== JSON.stringify(reference)) {
    const device = devices[sampleIndexes[k] as number];
    console.error(`MISMATCH on device ${device?.id} ${device ? formatLabels(device.labels) : ''}`);
    console.error(`  engine:    ${JSON.stringify(engine)}`);
    console.error(`  reference: ${JSON.stringify(reference)}`);
    process.exit(1);
  }
}
console.log(`sample agrees: ${outcomes(referenceSample)}`);

const rssMb = Math.round(process.resourceUsage().maxRSS / 1024);
const ratio = Math.round(referenceMs / engineMs);
console.log(`peak RSS: ${rssMb} MiB`);
console.log(
  `resolve: engine_s=${seconds(engineMs)} reference_s=${seconds(referenceMs)} ratio=${ratio} rss_mb=${rssMb}`,
);
