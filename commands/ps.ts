import { Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { familiarRef, listContainers } from '../src/index.js';
import { humanAge, table } from '../src/cli/format.js';
import { parseTemplate, renderTemplate } from '../src/cli/template.js';

export default class Ps extends TspodCommand {
  static override description = 'list containers';
  static override flags = {
    all: Flags.boolean({ char: 'a', description: 'show all containers (default shows just running)' }),
    quiet: Flags.boolean({ char: 'q', description: 'only display container IDs' }),
    filter: Flags.string({ char: 'f', multiple: true, description: 'filter: id=, name=, status=, ancestor=, exited=' }),
    format: Flags.string({ description: '"json": one JSON object per line; or a Go template: "{{.Names}} {{.Status}}", "table {{.ID}}\\t{{.Image}}"' }),
    'no-trunc': Flags.boolean({ description: "don't truncate output" }),
    last: Flags.integer({ char: 'n', description: 'show the N last created containers (all states)', min: 0 }),
    latest: Flags.boolean({ char: 'l', description: 'show the latest created container (all states)' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(Ps);
    const template = flags.format && flags.format !== 'json' && flags.format !== 'table' ? parseTemplate(flags.format) : undefined;
    const last = flags.latest ? 1 : flags.last;
    // docker: -n/-l imply -a; the list is newest first
    const list = (await listContainers(this.roots(flags), { all: flags.all || last !== undefined, filters: flags.filter })).slice(0, last);
    const id = (s: string) => (flags['no-trunc'] ? s : s.slice(0, 12));
    if (flags.quiet) {
      for (const c of list) process.stdout.write(id(c.id) + '\n');
      return;
    }
    const cmd = (s: string) => JSON.stringify(flags['no-trunc'] || s.length <= 20 ? s : s.slice(0, 19) + '…');
    // docker ps's fields (its --format json and template names)
    const fields = (c: (typeof list)[number]) => ({ ID: id(c.id), Names: c.name, Image: familiarRef(c.image), Command: template ? cmd(c.command) : c.command,
      CreatedAt: c.created, RunningFor: humanAge(c.created), State: c.state, Status: c.status, Ports: c.ports.join(', '), Pid: c.pid ?? 0, ExitCode: c.exitCode ?? 0 });
    if (flags.format === 'json') {
      for (const c of list) process.stdout.write(JSON.stringify(fields(c)) + '\n');
      return;
    }
    if (template) {
      process.stdout.write(renderTemplate(template, list.map(fields), PS_HEADERS));
      return;
    }
    process.stdout.write(table(['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
      list.map((c) => [id(c.id), familiarRef(c.image), cmd(c.command), humanAge(c.created), c.status, c.ports.join(', '), c.name])));
  }
}

/** docker ps's column names for the template fields. */
const PS_HEADERS: Record<string, string> = {
  ID: 'CONTAINER ID', Names: 'NAMES', Image: 'IMAGE', Command: 'COMMAND', CreatedAt: 'CREATED AT', RunningFor: 'CREATED',
  State: 'STATE', Status: 'STATUS', Ports: 'PORTS', Pid: 'PID', ExitCode: 'EXIT CODE',
};
