// --format templates (src/cli/template.ts) and docker's durations (src/util/duration.ts).
import { describe, expect, it } from 'vitest';
import { inspectOutput, parseTemplate, renderTemplate } from '../../../src/cli/template.js';
import { humanDuration } from '../../../src/util/duration.js';
import { bytesSize, STATS_HEADERS, STATS_TABLE, statsFields } from '../../../src/cli/format.js';
import { TspodError } from '../../../src/util/errors.js';

const inspect = { Id: 'abc', State: { Status: 'running', Pid: 42, Running: true, Error: null }, Config: { Cmd: ['sleep', '1'], Labels: { 'a.b': 'x' } } };

describe('--format templates', () => {
  it('renders fields, nested fields, json, upper/lower, index, and the whole value', () => {
    expect(parseTemplate('{{.State.Status}} {{.State.Pid}} {{.State.Running}}').render(inspect)).toBe('running 42 true');
    // Go's %v, as docker prints them: a list as [a b], a map as map[k:v] (keys sorted), null as <nil>
    expect(parseTemplate('{{.Config.Cmd}} {{.Config.Labels}} {{.State.Error}} {{.Nope}}').render(inspect)).toBe('[sleep 1] map[a.b:x] <nil> <no value>');
    expect(parseTemplate('{{json .Config.Cmd}}|{{json .}}').render({ Config: { Cmd: ['a'] } })).toBe('["a"]|{"Config":{"Cmd":["a"]}}');
    expect(parseTemplate('{{upper .Id}}-{{lower .State.Status}}').render({ Id: 'abc', State: { Status: 'RUNNING' } })).toBe('ABC-running');
    expect(parseTemplate('{{index .Config.Labels "a.b"}}').render(inspect)).toBe('x');
    expect(parseTemplate('{{ .Id }}{{- .Id -}}').render(inspect)).toBe('abcabc');
    expect(parseTemplate('{{.}}').render('plain')).toBe('plain');
  });

  it('prints <no value> for a missing field and <nil> for null, as Go does for a map', () => {
    expect(parseTemplate('{{.Nope}}/{{.State.Nope.Deeper}}/{{.State.Error}}').render(inspect)).toBe('<no value>/<no value>/<nil>');
  });

  it('turns a written \\t and \\n into tab and newline; "table " gives docker-like headers', () => {
    const t = parseTemplate('table {{.ID}}\\t{{.Names}}\\t{{.RunningFor}}\\t{{.ExitCode}}');
    expect(t.table).toBe(true);
    expect(t.render({ ID: '1', Names: 'n', RunningFor: '2 seconds ago', ExitCode: 0 })).toBe('1\tn\t2 seconds ago\t0');
    expect(t.header({ ID: 'CONTAINER ID', RunningFor: 'CREATED' })).toBe('CONTAINER ID\tNAMES\tCREATED\tEXIT CODE');
    expect(parseTemplate('{{.A}}\\n').render({ A: 1 })).toBe('1\n');
  });

  it('renderTemplate: a line per value; a table gets the header row and aligned columns', () => {
    const rows = [{ Name: 'a', Size: 1 }, { Name: 'longer', Size: 22 }];
    expect(renderTemplate(parseTemplate('{{.Name}}={{.Size}}'), rows)).toBe('a=1\nlonger=22\n');
    expect(renderTemplate(parseTemplate('table {{.Name}}\\t{{.Size}}'), rows, { Name: 'NAME', Size: 'SIZE' })).toBe('NAME     SIZE\na        1\nlonger   22\n');
    expect(renderTemplate(parseTemplate('{{.Name}}'), [])).toBe('');
  });

  it("inspectOutput: docker's indented JSON array, or the template for each value", () => {
    expect(inspectOutput([{ Id: 'x' }])).toBe('[\n    {\n        "Id": "x"\n    }\n]\n');
    expect(inspectOutput([{ Id: 'x' }, { Id: 'y' }], parseTemplate('{{.Id}}'))).toBe('x\ny\n');
  });

  it('refuses what it does not know in one line naming the template', () => {
    for (const [src, what] of [
      ['{{foo .X}}', 'the function "foo"'],
      ['{{.Names', 'an unclosed action'],
      ['{{Names}}', '"Names"'],
      ['{{index .X}}', 'want index .Map "key"'],
      ['{{json .A .B}}', 'one argument'],
      ['{{range .X}}{{end}}', '"range": actions such as range, if, with are not supported'],
      ['{{if .X}}y{{end}}', '"if": actions such as range'],
    ] as const) {
      let err: unknown;
      try {
        parseTemplate(src);
      } catch (e) {
        err = e;
      }
      expect(err, src).toBeInstanceOf(TspodError);
      expect((err as TspodError).message.startsWith(`invalid --format template ${JSON.stringify(src)}: `), src).toBe(true);
      expect((err as TspodError).message, src).toContain(what);
      expect((err as TspodError).message, src).not.toContain('\n');
    }
  });
});

describe('humanDuration (docker go-units)', () => {
  it('words durations as docker ps and images do', () => {
    const s = 1000, m = 60 * s, h = 60 * m, d = 24 * h;
    expect([0, 999, 1 * s, 59 * s, 60 * s, 119 * s, 2 * m, 59 * m, 60 * m, 89 * m, 2 * h, 47 * h, 2 * d, 13 * d, 14 * d, 59 * d, 60 * d, 729 * d, 800 * d].map(humanDuration))
      .toEqual(['Less than a second', 'Less than a second', '1 second', '59 seconds', 'About a minute', 'About a minute', '2 minutes', '59 minutes',
        'About an hour', 'About an hour', '2 hours', '47 hours', '2 days', '13 days', '2 weeks', '8 weeks', '2 months', '24 months', '2 years']);
  });
});

describe('stats --format fields', () => {
  const sample = { id: 'a'.repeat(64), name: 'web', cpuPercent: 12.345, memoryBytes: 1.5 * 1024 * 1024, memoryLimitBytes: 64 * 1024 * 1024, pids: 3,
    netRxBytes: 1234, netTxBytes: 0, blockReadBytes: 2_500_000, blockWriteBytes: 4096 };
  it("words each field as docker does: binary memory, decimal I/O, two-decimal percentages", () => {
    expect(statsFields(sample, { hostMemory: 8 * 1024 ** 3 })).toEqual({
      Container: 'a'.repeat(12), Name: 'web', ID: 'a'.repeat(12), CPUPerc: '12.35%', MemUsage: '1.5MiB / 64MiB', MemPerc: '2.34%',
      NetIO: '1.23kB / 0B', BlockIO: '2.5MB / 4.1kB', PIDs: '3',
    });
    expect(statsFields(sample, { ref: 'web', hostMemory: 0, noTrunc: true })).toMatchObject({ Container: 'web', ID: 'a'.repeat(64) });
  });
  it("without a memory limit, the host's memory is the limit", () => {
    expect(statsFields({ ...sample, memoryLimitBytes: undefined }, { hostMemory: 3 * 1024 ** 3 })).toMatchObject({ MemUsage: '1.5MiB / 3GiB', MemPerc: '0.05%' });
    expect(bytesSize(1023)).toBe('1023B');
    expect(bytesSize(8_348_000_000)).toBe('7.775GiB');
  });
  it("the default table is docker's", () => {
    const t = parseTemplate(STATS_TABLE);
    expect(renderTemplate(t, [statsFields(sample, { hostMemory: 0 })], STATS_HEADERS).split('\n')[0]).toBe(
      'CONTAINER ID   NAME   CPU %    MEM USAGE / LIMIT   MEM %   NET I/O       BLOCK I/O       PIDS');
  });
});
