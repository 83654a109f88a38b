/** Graceful close on SIGINT/SIGTERM: the cleanup stops intake and drains; a second signal or 30 s forces exit. */
export function onShutdown(cleanup: (signal: string) => Promise<void>, log: (msg: string) => void): void {
  let closing = false;
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (closing) return;
      closing = true;
      log(`${signal} received: shutting down`);
      const force = setTimeout(() => process.exit(1), 30_000);
      force.unref();
      cleanup(signal)
        .then(() => process.exit(0))
        .catch(() => process.exit(1));
    });
  }
}
