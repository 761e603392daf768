import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { run } from '../src/index.js';
import { splitAtFirstPositional } from '../src/cli/argv.js';
import { shortId } from '../src/cli/format.js';

export default class Run extends TspodCommand {
  static override description = 'run a command in a new container';
  static override engineErrorExit = 125;
  /** `tspod create` is this command with createOnly (commands/create.ts). */
  static createOnly = false;
  static override strict = false;
  static override usage = 'run [FLAGS] IMAGE [COMMAND] [ARG...]';
  static override examples = [
    "<%= config.bin %> run --rm alpine:3.19 /bin/sh -c 'cat /etc/alpine-release; hostname; ps'",
    '<%= config.bin %> run --rm --memory 64m --cpus 0.5 --pids-limit 100 alpine:3.19 sh',
  ];
  static override args = { image: Args.string({ required: true, description: 'image reference or ID' }) };
  static override flags = {
    rm: Flags.boolean({ description: 'remove the container when it exits' }),
    detach: Flags.boolean({ char: 'd', description: 'run the container in the background (under a tspod-monitor) and print its ID' }),
    restart: Flags.string({ description: 'restart policy of a detached container, applied by its monitor: no, on-failure[:N], always, unless-stopped' }),
    name: Flags.string({ description: 'assign a name to the container' }),
    hostname: Flags.string({ char: 'h', description: 'container host name' }),
    env: Flags.string({ char: 'e', multiple: true, description: 'set environment variables (KEY=VALUE, or KEY to pass the caller\'s value)' }),
    user: Flags.string({ char: 'u', description: 'user name or uid[:gid]' }),
    workdir: Flags.string({ char: 'w', description: 'working directory inside the container' }),
    entrypoint: Flags.string({ description: 'overwrite the default entrypoint of the image' }),
    memory: Flags.string({ char: 'm', description: 'memory limit (e.g. 64m, 1g)' }),
    'memory-swap': Flags.string({ description: 'memory plus swap limit (e.g. 128m), -1 for unlimited swap; default twice --memory' }),
    cpus: Flags.string({ description: 'number of CPUs (e.g. 0.5)' }),
    'pids-limit': Flags.integer({ description: 'tune the container pids limit (-1 for unlimited)' }),
    'cgroup-parent': Flags.string({ description: 'parent cgroup for the container' }),
    network: Flags.string({ aliases: ['net'], default: 'bridge', description: 'network: bridge (default), none, host, or a network created with tspod network create' }),
    publish: Flags.string({ char: 'p', multiple: true, description: "publish a container's port to the host: [HOSTIP:][HOSTPORT:]CTRPORT[/tcp|udp]" }),
    'publish-all': Flags.boolean({ char: 'P', description: 'publish every exposed port to a random host port' }),
    dns: Flags.string({ multiple: true, description: 'set custom DNS servers' }),
    'dns-search': Flags.string({ multiple: true, description: 'set custom DNS search domains' }),
    'dns-option': Flags.string({ multiple: true, description: 'set DNS options' }),
    'add-host': Flags.string({ multiple: true, description: 'add a custom host-to-IP mapping (NAME:IP)' }),
    ip: Flags.string({ description: 'IPv4 address on the network (e.g. 10.89.0.10)' }),
    'network-alias': Flags.string({ multiple: true, description: 'add a network-scoped alias for the container' }),
    platform: Flags.string({ description: 'platform to pull if the image is missing (os/arch[/variant])' }),
    interactive: Flags.boolean({ char: 'i', description: 'keep stdin open (stdin is always passed through)' }),
    tty: Flags.boolean({ char: 't', description: 'allocate a pseudo-TTY (raw mode, window size, Ctrl-C/Ctrl-D go to the container)' }),
    // security and everyday run options (issue 5)
    'cap-add': Flags.string({ multiple: true, description: 'add Linux capabilities (e.g. SYS_ADMIN, or ALL)' }),
    'cap-drop': Flags.string({ multiple: true, description: 'drop Linux capabilities (e.g. NET_RAW, or ALL)' }),
    privileged: Flags.boolean({ description: 'give the container all capabilities and host devices, no seccomp, no masked paths' }),
    'security-opt': Flags.string({ multiple: true, description: 'seccomp=unconfined|PROFILE.json, no-new-privileges[=true|false], systempaths=unconfined' }),
    'read-only': Flags.boolean({ description: "mount the container's root filesystem read-only" }),
    tmpfs: Flags.string({ multiple: true, description: 'mount a tmpfs: PATH[:OPTIONS] (default noexec,nosuid,nodev)' }),
    volume: Flags.string({ char: 'v', multiple: true, description: 'bind a host path or a named volume: SOURCE:TARGET[:ro]' }),
    mount: Flags.string({ multiple: true, description: 'type=bind|volume|tmpfs,source=…,target=…[,readonly]' }),
    device: Flags.string({ multiple: true, description: 'add a host device: HOST[:CONTAINER][:PERMISSIONS]' }),
    'shm-size': Flags.string({ description: 'size of /dev/shm (default 64m)' }),
    ulimit: Flags.string({ multiple: true, description: 'ulimit: NAME=SOFT[:HARD], e.g. nofile=1024:2048' }),
    sysctl: Flags.string({ multiple: true, description: 'namespaced kernel parameter: KEY=VALUE' }),
    init: Flags.boolean({ description: 'run an init (tspod-init) as PID 1 that forwards signals and reaps zombies' }),
    'env-file': Flags.string({ multiple: true, description: 'read environment variables from a file' }),
    label: Flags.string({ char: 'l', multiple: true, description: 'set metadata on the container (KEY=VALUE)' }),
    'stop-signal': Flags.string({ description: 'signal to stop the container (default: the image\'s StopSignal, else SIGTERM)' }),
    'stop-timeout': Flags.integer({ description: 'seconds to wait for the stop signal before SIGKILL (-1: forever)' }),
  };

  async run(): Promise<void> {
    const { head, rest } = splitAtFirstPositional(this.argv, Run.flags);
    // "--" before the image: a multiple-valued flag (-v, -e, --cap-add…) must not swallow it. Only when
    // the split found a positional (the image); a sentinel tells that apart from a trailing flag value.
    const probe = splitAtFirstPositional([...this.argv, '\0image?'], Run.flags).head;
    const hasImage = probe.at(-1) !== '\0image?';
    const parseArgv = hasImage && head.length > 1 ? [...head.slice(0, -1), '--', head.at(-1)!] : head;
    const { args, flags } = await this.parse(Run, parseArgv);
    const result = await run({
      roots: this.roots(flags),
      image: args.image,
      command: rest,
      name: flags.name,
      hostname: flags.hostname,
      env: flags.env,
      user: flags.user,
      workdir: flags.workdir,
      entrypoint: flags.entrypoint,
      memory: flags.memory,
      memorySwap: flags['memory-swap'],
      cpus: flags.cpus,
      pidsLimit: flags['pids-limit'],
      cgroupParent: flags['cgroup-parent'],
      network: flags.network,
      publish: flags.publish,
      publishAll: flags['publish-all'],
      dns: flags.dns,
      dnsSearch: flags['dns-search'],
      dnsOptions: flags['dns-option'],
      addHosts: flags['add-host'],
      ip: flags.ip,
      networkAliases: flags['network-alias'],
      rm: flags.rm,
      capAdd: flags['cap-add'],
      capDrop: flags['cap-drop'],
      privileged: flags.privileged,
      securityOpt: flags['security-opt'],
      readOnly: flags['read-only'],
      tmpfs: flags.tmpfs,
      volumes: flags.volume,
      mounts: flags.mount,
      devices: flags.device,
      shmSize: flags['shm-size'],
      ulimits: flags.ulimit,
      sysctls: flags.sysctl,
      init: flags.init,
      tty: flags.tty,
      interactive: flags.interactive,
      envFile: flags['env-file'],
      labels: flags.label,
      stopSignal: flags['stop-signal'],
      stopTimeout: flags['stop-timeout'],
      detach: flags.detach,
      create: (this.constructor as typeof Run).createOnly,
      restart: flags.restart,
      platform: flags.platform,
      onPull: (e) => {
        if (e.type === 'missing') process.stderr.write(`Unable to find image '${e.image}' locally\n`);
        else if (e.type === 'layer' && e.status === 'done') process.stderr.write(`${shortId(e.digest)}: Pull complete\n`);
        else if (e.type === 'resolved') process.stderr.write(`Digest: ${e.digest}\n`);
      },
    });
    if (result.oomKilled) process.stderr.write(`tspod: container ${result.name} was killed: out of memory (its --memory limit)\n`);
    if (flags.detach || (this.constructor as typeof Run).createOnly) {
      process.stdout.write(result.id + '\n');
      return;
    }
    process.exitCode = result.exitCode;
  }
}
