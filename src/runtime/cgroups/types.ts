/**
 * The cgroup driver interface: one shape for cgroup v1 (legacy and hybrid hosts) and v2 (unified).
 * Every file-system effect goes through `CgroupIo`, so unit tests run the real drivers against a
 * temp tree that behaves like cgroupfs (see fake.ts).
 */

/** Resource limits in docker's terms. Unset fields are left at the kernel's default. */
export interface CgroupLimits {
  memoryBytes?: number;
  /** Memory plus swap, like docker's --memory-swap; -1 is unlimited. Defaults to 2 × memoryBytes. */
  memorySwapBytes?: number;
  cpuQuotaUs?: number;
  /** Defaults to 100000 when a quota is set. */
  cpuPeriodUs?: number;
  /** v1 cpu.shares (2..262144); mapped to cpu.weight on v2 with runc's formula. */
  cpuShares?: number;
  pidsLimit?: number;
  /**
   * Device access, as docker's device cgroup: allow rules such as "c 1:3 rwm" or "c *:* m"; when set,
   * every other device is denied (so CAP_MKNOD cannot open the host's disks). Unset: no restriction
   * (--privileged). cgroup v1 writes them to devices.deny/allow; v2 attaches an eBPF device program
   * compiled from them (devices-bpf.ts).
   */
  devices?: string[];
}

export interface CgroupStats {
  memoryBytes?: number;
  /** Absent when unlimited. */
  memoryLimitBytes?: number;
  pids?: number;
  cpuUsageNs?: number;
}

export interface Cgroup {
  /** Path relative to where it was nested: "tspod/<id>" by default, "<parent>/<id>" with a parent. */
  readonly name: string;
  readonly version: 1 | 2;
  /** The leaf directories: one per v1 hierarchy, one for v2. Record them to reopen from another cgroup. */
  readonly paths: string[];
  /** Writes the pid to cgroup.procs in every hierarchy. */
  addProcess(pid: number): Promise<void>;
  /** Whether the kernel OOM killer killed a process of this group. */
  oomKilled(): Promise<boolean>;
  stats(): Promise<CgroupStats>;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Whether the group is frozen or freezing (v1 freezer.state, v2 cgroup.freeze). */
  isFrozen(): Promise<boolean>;
  /**
   * Kills what is left (bounded), removes the leaf directories, then tries to remove the default
   * `tspod/` parent (left alone when another container uses it). Idempotent.
   */
  destroy(): Promise<void>;
}

export interface CgroupOpenOptions {
  /** Like docker's --cgroup-parent: absolute ("/a/b") from the hierarchy root, relative ("a/b") to the caller's cgroup. */
  parent?: string;
  /**
   * The leaf directories recorded from `Cgroup.paths` at create time. A later command may run in
   * another cgroup than the one that created the container; with `paths` it finds the group anyway.
   */
  paths?: string[];
}

/**
 * The host's hierarchies as a container sees them through its cgroup namespace: what spec.ts mounts at
 * /sys/fs/cgroup. v1: one entry per mounted hierarchy, named as its directory on the host ("memory",
 * "cpu,cpuacct", "systemd") with the controllers (or name=…) it carries.
 */
export type CgroupView = { version: 2 } | { version: 1; hierarchies: { name: string; controllers: string[] }[] };

export interface CgroupDriver {
  readonly version: 1 | 2;
  view(): CgroupView;
  /** `name` is one path component (the container id). */
  create(name: string, limits: CgroupLimits, opts?: { parent?: string }): Promise<Cgroup>;
  /** Opens an existing group; ENOTFOUND when none of its directories exists. */
  open(name: string, opts?: CgroupOpenOptions): Promise<Cgroup>;
}

/**
 * The file-system and process effects a driver needs. Errors carry a Node errno `code`
 * (ENOENT, EEXIST, EBUSY, …) like node:fs errors.
 */
export interface CgroupIo {
  readFile(path: string): Promise<string>;
  /** Writes to an existing file, never creating it (cgroupfs has no plain files). One write call. */
  writeFile(path: string, data: string): Promise<void>;
  mkdir(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  /** Names of the subdirectories (child cgroups) of a directory; [] when it does not exist. */
  listDirs(path: string): Promise<string[]>;
  exists(path: string): Promise<boolean>;
  /** process.kill; may throw ESRCH. */
  kill(pid: number, signal: NodeJS.Signals): void;
  /** Attaches a cgroup device program (struct bpf_insn[]) to a cgroup v2 directory: v2's device policy. */
  attachDeviceProgram(dir: string, insns: Buffer): Promise<void>;
  sleep(ms: number): Promise<void>;
}
