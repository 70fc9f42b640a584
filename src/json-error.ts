// JSON.parse quotes the text it failed on, raw: from a damaged file that can hold newlines and
// control characters, which would break the one-line error the user gets.

/** The reason JSON.parse gave, with control characters escaped so it stays one printable line. */
export function jsonErrorReason(err: unknown): string {
  return (err as Error).message.replace(/[\u0000-\u001f\u007f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
