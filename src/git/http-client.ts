import { Readable } from 'node:stream';
import got from 'got';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { ProxyAgents } from './proxy-agents.js';

export interface HttpLimits {
  /** Time to open the TCP connection. */
  connectMs: number;
  /** Time from sending a request to the first byte of its answer: a server that never answers. */
  firstByteMs: number;
  /** Time for a whole request, body included: a server that answers too slowly. */
  totalMs: number;
  /** Bytes one response may have; more is an error (a server streaming garbage forever). */
  maxResponseBytes: number;
}

export const defaultHttpLimits: HttpLimits = {
  connectMs: 10_000,
  firstByteMs: 30_000,
  totalMs: 300_000,
  maxResponseBytes: 1024 * 1024 * 1024,
};

/** What one request did, for request counting, logs and benchmarks. Never holds headers (credentials). */
export interface HttpExchange {
  method: string;
  url: string;
  status: number;
  bytesReceived: number;
}

export interface HttpClientOptions {
  limits?: Partial<HttpLimits>;
  /** Called when a response body has been read to its end (or failed). */
  onExchange?: (exchange: HttpExchange) => void;
}

/** A request body read whole (upload-pack requests are small), or undefined when there is none. */
export async function collectBody(body: GitHttpRequest['body']): Promise<Buffer | undefined> {
  if (!body) return undefined;
  const chunks: Uint8Array[] = [];
  for await (const chunk of body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

function flatHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string> {
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(headers)) {
    if (value !== undefined) flat[key] = Array.isArray(value) ? value.join(', ') : value;
  }
  return flat;
}

/**
 * The HTTP client isomorphic-git uses, on `got`: connect, first-byte and total timeouts, a response size
 * cap, proxies from the environment, no retries (the caller moves on to the next mirror) and a report of
 * every exchange. Request bodies (upload-pack wants and haves) are small and sent in one piece.
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const limits = { ...defaultHttpLimits, ...options.limits };
  const agents = new ProxyAgents();
  return {
    async request(request: GitHttpRequest): Promise<GitHttpResponse> {
      const method = request.method ?? 'GET';
      const body = await collectBody(request.body);
      const stream = got.stream(request.url, {
        method: method as 'GET' | 'POST',
        headers: request.headers ?? {},
        ...(body ? { body } : {}),
        agent: agents.for(request.url),
        timeout: { connect: limits.connectMs, response: limits.firstByteMs, request: limits.totalMs },
        retry: { limit: 0 },
        throwHttpErrors: false,
        decompress: true,
      });
      const response = await new Promise<import('got').Response>((resolve, reject) => {
        stream.once('response', resolve);
        stream.once('error', reject);
      });
      const exchange: HttpExchange = {
        method,
        url: request.url,
        status: response.statusCode,
        bytesReceived: 0,
      };
      async function* read(): AsyncIterableIterator<Uint8Array> {
        try {
          for await (const chunk of stream as AsyncIterable<Buffer>) {
            exchange.bytesReceived += chunk.length;
            if (exchange.bytesReceived > limits.maxResponseBytes) {
              throw new Error(`response larger than ${limits.maxResponseBytes} bytes`);
            }
            yield chunk;
          }
        } finally {
          stream.destroy();
          options.onExchange?.(exchange);
        }
      }
      return {
        url: response.url,
        method,
        statusCode: response.statusCode,
        statusMessage: response.statusMessage ?? '',
        headers: flatHeaders(response.headers),
        body: read(),
      };
    },
  };
}

/** Chunks already in memory, as the async iterator isomorphic-git takes for a body. */
export function replay(chunks: readonly Uint8Array[]): AsyncIterableIterator<Uint8Array> {
  return Readable.from(chunks)[Symbol.asyncIterator]() as AsyncIterableIterator<Uint8Array>;
}

/**
 * A client that answers repeated GETs of one ref advertisement (`info/refs?service=git-upload-pack`)
 * from memory: a sync reads the advertisement to decide whether to fetch, and isomorphic-git's fetch
 * asks for it again right away. Use one per mirror attempt, so the fetch sees exactly the refs the
 * decision was made on, one request sooner.
 */
export function reuseAdvertisement(http: HttpClient): HttpClient {
  const seen = new Map<string, { response: GitHttpResponse; chunks: Uint8Array[] }>();
  return {
    async request(request: GitHttpRequest): Promise<GitHttpResponse> {
      const cacheable =
        (request.method ?? 'GET') === 'GET' && request.url.endsWith('/info/refs?service=git-upload-pack');
      if (!cacheable) return http.request(request);
      const known = seen.get(request.url);
      if (known) return { ...known.response, body: replay(known.chunks) };
      const response = await http.request(request);
      const chunks: Uint8Array[] = [];
      for await (const chunk of response.body ?? replay([])) chunks.push(chunk);
      if (response.statusCode === 200) seen.set(request.url, { response, chunks });
      return { ...response, body: replay(chunks) };
    },
  };
}
