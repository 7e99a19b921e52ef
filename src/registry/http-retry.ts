/** fetch with retries and exponential backoff for transient failures (network errors, 5xx, 429). */

export class RegistryError extends Error {
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface RetryOptions {
  attempts?: number;
  /** First delay; doubles each retry. */
  baseDelayMs?: number;
  signal?: AbortSignal;
  onRetry?: (attempt: number, why: string) => void;
}

const transient = (status: number) => status >= 500 || status === 429 || status === 408;

export async function withRetry<T>(what: string, fn: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const attempts = o.attempts ?? 5;
  let delay = o.baseDelayMs ?? 250;
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (e) {
      // Local file-system failures (a full disk, permissions) do not get better by retrying.
      if (/^E(NOSPC|DQUOT|ACCES|ROFS|PERM)$/.test(String((e as NodeJS.ErrnoException).code))) throw e;
      const status = e instanceof RegistryError ? e.status : undefined;
      const retriable =
        status === undefined
          ? !(e instanceof RegistryError) && (e as Error).name !== "AbortError"
          : transient(status);
      if (!retriable || i >= attempts || o.signal?.aborted)
        throw e instanceof RegistryError ? e : new RegistryError(`${what}: ${(e as Error).message}`);
      o.onRetry?.(i, (e as Error).message);
      await new Promise((r) => setTimeout(r, delay));
      delay *= 2;
    }
  }
}

/** A fetch whose non-2xx answers become RegistryErrors carrying the status. */
export async function request(url: string, init: RequestInit, what: string): Promise<Response> {
  const res = await fetch(url, init);
  if (!res.ok) {
    await res.arrayBuffer().catch(() => {});
    throw new RegistryError(`${what}: the registry answered ${res.status} ${res.statusText}`, res.status);
  }
  return res;
}
