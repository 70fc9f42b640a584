// Downloads of weight files: bounded in size (a server cannot make the process allocate without
// limit), and every failure names the URL.

/** Largest file downloaded: DenseNet-264's float32 weights are 133 MB; this leaves room for any zoo model. */
export const MAX_DOWNLOAD_BYTES = 2 ** 30;

export class DownloadError extends Error {
  constructor(readonly url: string, readonly detail: string) {
    super(`${url}: download failed: ${detail}`);
    this.name = 'DownloadError';
  }
}

async function readBody(url: string, res: Response, maxBytes: number): Promise<Uint8Array> {
  const announced = Number(res.headers.get('content-length'));
  if (announced > maxBytes) throw new DownloadError(url, `the server announces ${announced} bytes, more than the ${maxBytes} allowed`);
  if (!res.body) return new Uint8Array(0);
  const parts: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      throw new DownloadError(url, `more than the ${maxBytes} bytes allowed`);
    }
    parts.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** The bytes at `url`, at most `maxBytes`. */
export async function downloadBytes(url: string, maxBytes = MAX_DOWNLOAD_BYTES): Promise<Uint8Array> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (err) {
    const cause = (err as { cause?: Error }).cause;
    throw new DownloadError(url, cause?.message ?? (err as Error).message);
  }
  if (!res.ok) throw new DownloadError(url, `HTTP ${res.status} ${res.statusText}`);
  return readBody(url, res, maxBytes);
}

/** A fetch for tfjs's http loader that downloads through downloadBytes (so model.json and shards are bounded and named). */
export async function boundedFetch(input: RequestInfo | URL): Promise<Response> {
  const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  return new Response(await downloadBytes(url));
}
