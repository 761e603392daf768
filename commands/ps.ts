import { Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { listContainers } from '../src/index.js';
import { table } from '../src/cli/format.js';

export default class Ps extends TspodCommand {
  static override description = 'list containers';
  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'show all containers (default shows just running)' }),
    quiet: Flags.boolean({ char: 'q', description: 'only display container IDs' }),
    filter: Flags.string({ char: 'f', multiple: true, description: 'filter: id=, name=, status=, ancestor=, exited=' }),
    format: Flags.string({ description: '"json": one JSON object per line' }),
    'no-trunc': Flags.boolean({ description: "don't truncate output" }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Ps);
    const list = await listContainers(this.roots(flags), { all: flags.all, filters: flags.filter });
    const id = (s: string) => (flags['no-trunc'] ? s : s.slice(0, 12));
    if (flags.quiet) {
      for (const c of list) process.stdout.write(id(c.id) + '\n');
      return;
    }
    if (flags.format === 'json') {
      for (const c of list) {
        process.stdout.write(JSON.stringify({ ID: id(c.id), Names: c.name, Image: c.image, Command: c.command, CreatedAt: c.created, State: c.state, Status: c.status, Ports: c.ports.join(', '), Pid: c.pid ?? 0, ExitCode: c.exitCode ?? 0 }) + '\n');
      }
      return;
    }
    const cmd = (s: string) => JSON.stringify(flags['no-trunc'] || s.length <= 20 ? s : s.slice(0, 19) + '…');
    process.stdout.write(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
      list.map((c) => [id(c.id), c.image, cmd(c.command), humanCreated(c.created), c.status, c.ports.join(', '), c.name])));
  }
}

function humanCreated(iso: string): string {
  const s = Math.max(0, Math.round((Date.now() - Date.parse(iso)) / 1000));
  if (s < 60) return `${s} seconds ago`;
  if (s < 3600) return `${Math.round(s / 60)} minutes ago`;
  if (s < 86400) return `${Math.round(s / 3600)} hours ago`;
  return `${Math.round(s / 86400)} days ago`;
}
