/** One git mirror of the fleet repository, as configured. */
export interface RemoteConfig {
  url: string;
  /** Basic auth; `password` may instead come from the environment. */
  username?: string;
  password?: string;
  /** Bearer token (`Authorization: Bearer …`). */
  token?: string;
}

/** A remote ready to use: a URL without credentials, for requests and logs, and the auth headers. */
export interface Remote {
  url: string;
  headers: Record<string, string>;
}

/**
 * Environment variables that give credentials to remotes that have none of their own:
 * `GITFLEET_GIT_TOKEN` (bearer) or `GITFLEET_GIT_USERNAME` + `GITFLEET_GIT_PASSWORD` (basic).
 */
export type CredentialEnv = Partial<
  Record<'GITFLEET_GIT_TOKEN' | 'GITFLEET_GIT_USERNAME' | 'GITFLEET_GIT_PASSWORD', string>
>;

/** The URL with any `user:password@` removed: the only form of a remote URL that may be printed. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString();
  } catch {
    return '<invalid url>';
  }
}

/**
 * Moves credentials out of the URL into an `Authorization` header. Precedence: the remote's own token or
 * username/password, then credentials written in the URL, then the environment.
 */
export function prepareRemote(config: RemoteConfig, env: CredentialEnv = {}): Remote {
  const parsed = new URL(config.url);
  const inUrl = parsed.username
    ? { username: decodeURIComponent(parsed.username), password: decodeURIComponent(parsed.password) }
    : undefined;
  const url = redactUrl(config.url);
  const basic = (username: string, password = '') =>
    `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
  let authorization: string | undefined;
  if (config.token) authorization = `Bearer ${config.token}`;
  else if (config.username) authorization = basic(config.username, config.password);
  else if (inUrl) authorization = basic(inUrl.username, inUrl.password);
  else if (env.GITFLEET_GIT_TOKEN) authorization = `Bearer ${env.GITFLEET_GIT_TOKEN}`;
  else if (env.GITFLEET_GIT_USERNAME)
    authorization = basic(env.GITFLEET_GIT_USERNAME, env.GITFLEET_GIT_PASSWORD);
  return { url, headers: authorization ? { Authorization: authorization } : {} };
}
