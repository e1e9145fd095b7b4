import { Readable } from 'node:stream';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { GitHttpRequest, GitHttpResponse, HttpClient } from 'isomorphic-git';
import { ProxyAgents } from './proxy-agents.js';

export type { HttpClient };

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

export interface HttpClientOptions {
  limits?: Partial<HttpLimits>;
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

const redirects = new Set([301, 302, 303, 307, 308]);
const maxRedirects = 5;

/**
 * The HTTP client isomorphic-git uses, on node:http: connect, first-byte and total timeouts, a response
 * size cap, proxies from the environment, redirects of GETs followed (credentials only to the same
 * origin) and no retries (the caller moves on to the next mirror). Request bodies (upload-pack wants and
 * haves) are small and sent in one piece. Built on node:http rather than a client library because it is
 * on every device's path from start to first request.
 */
export function createHttpClient(options: HttpClientOptions = {}): HttpClient {
  const limits = { ...defaultHttpLimits, ...options.limits };
  const agents = new ProxyAgents();

  /** One request and its response headers, within the connect and first-byte limits. */
  function send(
    url: URL,
    method: string,
    headers: Record<string, string>,
    body: Buffer | undefined,
    signal: AbortSignal,
  ): Promise<IncomingMessage> {
    return new Promise((resolve, reject) => {
      const agent = agents.for(url.href);
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, {
        method,
        headers: body ? { ...headers, 'content-length': String(body.length) } : headers,
        agent: url.protocol === 'https:' ? agent.https : agent.http,
        signal,
      });
      const fail = (reason: string) => request.destroy(new Error(reason));
      const firstByte = setTimeout(
        () => fail(`no response within ${limits.firstByteMs} ms`),
        limits.firstByteMs,
      );
      request.once('socket', (socket) => {
        if (!socket.connecting) return;
        const connect = setTimeout(
          () => fail(`no connection within ${limits.connectMs} ms`),
          limits.connectMs,
        );
        socket.once('connect', () => clearTimeout(connect));
        socket.once('close', () => clearTimeout(connect));
      });
      request.once('response', (response) => {
        clearTimeout(firstByte);
        resolve(response);
      });
      request.once('error', (error) => {
        clearTimeout(firstByte);
        reject(error);
      });
      request.end(body);
    });
  }

  /** Sends the request, following redirects of a GET; the last response and its URL. */
  async function follow(request: GitHttpRequest, body: Buffer | undefined, signal: AbortSignal) {
    const method = request.method ?? 'GET';
    let url = new URL(request.url);
    let headers = { ...(request.headers ?? {}) };
    for (let hop = 0; ; hop++) {
      const response = await send(url, method, headers, body, signal);
      const location = response.headers.location;
      if (!redirects.has(response.statusCode ?? 0) || !location || method !== 'GET') return { response, url };
      response.resume();
      if (hop === maxRedirects) throw new Error(`more than ${maxRedirects} redirects`);
      const next = new URL(location, url);
      if (next.origin !== url.origin) headers = withoutAuthorization(headers);
      url = next;
    }
  }

  return {
    async request(request: GitHttpRequest): Promise<GitHttpResponse> {
      const body = await collectBody(request.body);
      const total = new AbortController();
      const timer = setTimeout(
        () => total.abort(new Error(`request took longer than ${limits.totalMs} ms`)),
        limits.totalMs,
      );
      // A request cut by the total limit fails with that reason, not with the abort it caused.
      const reason = (error: unknown): unknown =>
        total.signal.aborted ? (total.signal.reason as unknown) : error;
      const { response, url } = await follow(request, body, total.signal).catch((error: unknown) => {
        clearTimeout(timer);
        throw reason(error);
      });
      async function* read(): AsyncIterableIterator<Uint8Array> {
        let received = 0;
        try {
          for await (const chunk of response as AsyncIterable<Buffer>) {
            received += chunk.length;
            if (received > limits.maxResponseBytes) {
              throw new Error(`response larger than ${limits.maxResponseBytes} bytes`);
            }
            yield chunk;
          }
        } catch (error) {
          throw reason(error);
        } finally {
          clearTimeout(timer);
          response.destroy();
        }
      }
      return {
        url: url.href,
        method: request.method ?? 'GET',
        statusCode: response.statusCode ?? 0,
        statusMessage: response.statusMessage ?? '',
        headers: flatHeaders(response.headers),
        body: read(),
      };
    },
  };
}

function withoutAuthorization(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([key]) => key.toLowerCase() !== 'authorization'));
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
      const chunks = [(await collectBody(response.body)) ?? Buffer.alloc(0)];
      if (response.statusCode === 200) seen.set(request.url, { response, chunks });
      return { ...response, body: replay(chunks) };
    },
  };
}
