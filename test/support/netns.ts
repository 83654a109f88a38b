/**
 * Other hosts for tests: Linux network namespaces (iproute2's `ip netns`), each joined to this
 * host by its own veth pair on its own /24. A process started in one sees only its loopback and
 * its veth: it reaches this host at `hostAddress`, and nothing else.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';

export interface TestHost {
  readonly name: string;
  /** This (the test's) host as the namespace sees it. */
  readonly hostAddress: string;
  /** The namespace's own address. */
  readonly address: string;
  /** Starts `command` inside the namespace (same process tree, same file system). */
  spawn(command: string, args: string[], env: NodeJS.ProcessEnv): ChildProcess;
  /** SIGKILLs every process in the namespace. */
  killAll(): void;
  /** Kills what runs there and removes the namespace and its veth pair. */
  remove(): void;
}

const PREFIX = 'cnnmh';
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 10_000 }).toString();

/** Why namespaces cannot be made here (no iproute2, not root), or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  const probe = `${PREFIX}probe${process.pid}`;
  try {
    ip('netns', 'add', probe);
  } catch (err) {
    return `ip netns is not available: ${(err as { stderr?: Buffer }).stderr?.toString().trim() || (err as Error).message}`;
  }
  try {
    ip('netns', 'del', probe);
  } catch {
    // gone already
  }
  return undefined;
}

/** Namespaces left by an earlier run that died before removing them (names are this file's). */
export function removeStaleHosts(): void {
  for (const line of ip('netns', 'list').split('\n')) {
    const name = line.split(' ')[0];
    if (name.startsWith(PREFIX)) removeNamespace(name);
  }
}

function pidsIn(name: string): number[] {
  try {
    return ip('netns', 'pids', name).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

function removeNamespace(name: string): void {
  for (const pid of pidsIn(name)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  try {
    // The veth pair goes with the namespace that holds one end.
    ip('netns', 'del', name);
  } catch {
    // already removed
  }
}

/** Host number `n` (1-254): namespace `cnnmh<n>`, veth 10.213.<n>.1 (here) <-> 10.213.<n>.2 (there). */
export function createHost(n: number): TestHost {
  const name = `${PREFIX}${n}`;
  const here = `cnvh${n}`;
  const there = `cnvn${n}`;
  const hostAddress = `10.213.${n}.1`;
  const address = `10.213.${n}.2`;
  removeNamespace(name);
  ip('netns', 'add', name);
  try {
    ip('link', 'add', here, 'type', 'veth', 'peer', 'name', there);
    ip('link', 'set', there, 'netns', name);
    ip('addr', 'add', `${hostAddress}/24`, 'dev', here);
    ip('link', 'set', here, 'up');
    ip('netns', 'exec', name, 'ip', 'addr', 'add', `${address}/24`, 'dev', there);
    ip('netns', 'exec', name, 'ip', 'link', 'set', there, 'up');
    ip('netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up');
  } catch (err) {
    removeNamespace(name);
    throw err;
  }
  return {
    name,
    hostAddress,
    address,
    // `ip netns exec` enters the namespace and execs the command: its pid is the command's.
    spawn: (command, args, env) => spawn('ip', ['netns', 'exec', name, command, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] }),
    killAll: () => {
      for (const pid of pidsIn(name)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    },
    remove: () => removeNamespace(name),
  };
}
