/**
 * The live memory of a running node, for the soak's growth check. RSS and heap use rise between
 * V8's major collections, which under this load come about once a minute: a 60 s run sees one
 * rising slope whether or not anything leaks. So the soak asks the node itself for a full
 * collection through its inspector and then reads its memory: that is what the process really keeps.
 *
 * The node runs with --inspect-port=<port> (in NODE_OPTIONS), so SIGUSR1 opens its inspector on
 * that loopback port only; nothing listens before. The soak runs under --experimental-websocket
 * (Node 20; a global from Node 22 on) to speak the inspector protocol.
 */

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface LiveMemory {
  /** V8 heap in use after a full collection (bytes). */
  heapUsed: number;
  /** Resident set size at that moment (bytes): pages V8 freed are not always returned at once. */
  rss: number;
}

export async function liveMemory(pid: number, inspectPort: number, timeoutMs = 10_000): Promise<LiveMemory> {
  process.kill(pid, 'SIGUSR1'); // opens the inspector (no-op when it is open already)
  const deadline = Date.now() + timeoutMs;
  let url: string | undefined;
  while (url === undefined) {
    try {
      const targets = (await (await fetch(`http://127.0.0.1:${inspectPort}/json/list`)).json()) as Array<{ webSocketDebuggerUrl: string }>;
      url = targets[0]?.webSocketDebuggerUrl;
    } catch {
      if (Date.now() > deadline) throw new Error(`the inspector of ${pid} did not open on port ${inspectPort}`);
      await sleep(100);
    }
  }
  const ws = new WebSocket(url);
  try {
    await new Promise<void>((resolve, reject) => {
      ws.addEventListener('open', () => resolve(), { once: true });
      ws.addEventListener('error', () => reject(new Error(`inspector connection to ${pid} failed`)), { once: true });
    });
    let next = 1;
    const send = (method: string, params: Record<string, unknown> = {}) =>
      new Promise<any>((resolve, reject) => {
        const id = next++;
        const timer = setTimeout(() => reject(new Error(`${method} timed out`)), Math.max(1000, deadline - Date.now()));
        const onMessage = (event: MessageEvent) => {
          const msg = JSON.parse(String(event.data)) as { id?: number; result?: any; error?: { message: string } };
          if (msg.id !== id) return;
          clearTimeout(timer);
          ws.removeEventListener('message', onMessage);
          if (msg.error) reject(new Error(`${method}: ${msg.error.message}`));
          else resolve(msg.result);
        };
        ws.addEventListener('message', onMessage);
        ws.send(JSON.stringify({ id, method, params }));
      });
    await send('HeapProfiler.collectGarbage');
    const out = await send('Runtime.evaluate', { expression: 'JSON.stringify(process.memoryUsage())', returnByValue: true });
    const usage = JSON.parse(out.result.value as string) as { heapUsed: number; rss: number };
    return { heapUsed: usage.heapUsed, rss: usage.rss };
  } finally {
    ws.close();
  }
}
