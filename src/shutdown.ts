/**
 * Graceful close on SIGINT/SIGTERM: the cleanup stops intake and drains; a second signal or 30 s
 * forces exit (status 1), after `force` has run: `npm start` kills its worker children there, as
 * they run in sessions of their own that a terminal's second Ctrl-C does not reach.
 */
export function onShutdown(cleanup: (signal: string) => Promise<void>, log: (msg: string) => void, force: () => void = () => {}): void {
  let closing = false;
  const forceExit = (why: string) => {
    log(`${why}: exiting now`);
    try {
      force();
    } finally {
      process.exit(1);
    }
  };
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    process.on(signal, () => {
      if (closing) {
        forceExit(`${signal} received again`);
        return;
      }
      closing = true;
      log(`${signal} received: shutting down`);
      const timer = setTimeout(() => forceExit('still closing after 30 s'), 30_000);
      timer.unref();
      cleanup(signal)
        .then(() => process.exit(0))
        .catch(() => process.exit(1));
    });
  }
}
