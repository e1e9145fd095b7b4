import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';

/**
 * Keep-alive agents (for node:http and got) that honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY (read at each request),
 * one set per proxy so connections are reused. Plain http goes to the proxy as absolute-URI requests
 * (proxies often allow CONNECT to port 443 only); https tunnels through CONNECT.
 */
export class ProxyAgents {
  private readonly direct = {
    http: new HttpAgent({ keepAlive: true }),
    https: new HttpsAgent({ keepAlive: true }),
  };
  private readonly byProxy = new Map<string, { http: HttpAgent; https: HttpsAgent }>();

  for(url: string): { http: HttpAgent; https: HttpsAgent } {
    const proxy = getProxyForUrl(url);
    if (!proxy) return this.direct;
    let agents = this.byProxy.get(proxy);
    if (!agents) {
      agents = {
        http: new HttpProxyAgent(proxy, { keepAlive: true }),
        https: new HttpsProxyAgent(proxy, { keepAlive: true }),
      };
      this.byProxy.set(proxy, agents);
    }
    return agents;
  }

  /** Closes idle keep-alive sockets. */
  destroy(): void {
    for (const agents of [this.direct, ...this.byProxy.values()]) {
      agents.http.destroy();
      agents.https.destroy();
    }
  }
}
