// Peak resident memory of this process. On Linux it is read from /proc (VmHWM): getrusage's
// maxrss carries over from the parent through fork and exec, so a child started by a big
// process would report the parent's peak.
import * as fs from 'fs';

export function peakRssBytes(): number {
  try {
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    if (kb) return Number(kb[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}
