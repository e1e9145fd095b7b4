import { open } from 'node:fs/promises';
import { yamlLimits } from '../schema/parse-yaml-documents.js';

/**
 * Reads a file, but at most one byte more than a manifest may have, so the parser can say the file is too
 * large without anyone holding 100 MB in memory.
 */
export async function readBounded(
  path: string,
  limit: number = yamlLimits.maxFileBytes,
): Promise<Uint8Array> {
  const handle = await open(path, 'r');
  try {
    const buffer = new Uint8Array(limit + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      length += bytesRead;
      if (bytesRead === 0 || length >= buffer.length) return buffer.subarray(0, length);
    }
  } finally {
    await handle.close();
  }
}
