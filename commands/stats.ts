import { Args, Flags } from '@oclif/core';
import { totalmem } from 'node:os';
import { TspodCommand } from '../src/cli/base.js';
import { containerStats, listContainers, type ContainerStats } from '../src/index.js';
import { STATS_HEADERS, STATS_TABLE, statsFields } from '../src/cli/format.js';
import { parseTemplate, renderTemplate } from '../src/cli/template.js';

export default class Stats extends TspodCommand {
  static override description = 'display resource usage statistics of containers (CPU, memory, pids, network, block I/O)';
  static override strict = false;
  static override args = { container: Args.string({ required: false, description: 'container name or ID (prefix); default all running' }) };
  static override flags = {
    'no-stream': Flags.boolean({ description: 'print one sample and exit' }),
    'no-trunc': Flags.boolean({ description: "don't truncate output" }),
    format: Flags.string({ description: '"json": docker\'s fields as one JSON object per line; or a Go template with them: "{{.Name}} {{.CPUPerc}}", "table {{.Container}}\\t{{.MemUsage}}"' }),
    json: Flags.boolean({ description: "tspod's numbers (bytes, percent) as one JSON object per line" }),
  };

  async run(): Promise<void> {
    const { argv, flags } = await this.parse(Stats);
    // parsed before any sampling: a bad template is refused at once
    const template = flags.json || flags.format === 'json' ? undefined : parseTemplate(flags.format === undefined || flags.format === 'table' ? STATS_TABLE : flags.format);
    const roots = this.roots(flags);
    const given = argv as string[];
    const refs = given.length ? given : (await listContainers(roots)).map((c) => c.id);
    const hostMemory = totalmem();
    for (;;) {
      const all: ContainerStats[] = [];
      for (const r of refs) all.push(await containerStats(roots, r));
      if (flags.json) {
        for (const s of all) process.stdout.write(JSON.stringify(s) + '\n');
      } else {
        const fields = all.map((s, i) => statsFields(s, { ref: given.length ? refs[i] : undefined, hostMemory, noTrunc: flags['no-trunc'] }));
        if (template) process.stdout.write(renderTemplate(template, fields, STATS_HEADERS));
        else for (const f of fields) process.stdout.write(JSON.stringify(f) + '\n'); // --format json: docker's
      }
      if (flags['no-stream']) return;
    }
  }
}
