import { Args, Flags } from '@oclif/core';
import { TspodCommand } from '../src/cli/base.js';
import { ask, readStdinSecret } from '../src/cli/prompt.js';
import { login } from '../src/index.js';
import { fail } from '../src/util/errors.js';

export default class Login extends TspodCommand {
  static override description = 'log in to a registry (the password is read from stdin or the terminal, never from arguments)';
  static override examples = [
    'echo "$PASSWORD" | <%= config.bin %> login -u alice --password-stdin registry.example.com',
    '<%= config.bin %> login registry.example.com:5000',
  ];
  static override args = { registry: Args.string({ required: false, description: 'registry host[:port] (default docker.io)' }) };
  static override flags = {
    username: Flags.string({ char: 'u', description: 'user name' }),
    'password-stdin': Flags.boolean({ description: 'read the password from stdin' }),
    password: Flags.string({ char: 'p', hidden: true, description: 'refused: a password in the arguments is visible to every user (ps)' }),
  };

  async run(): Promise<void> {
    const { args, flags } = await this.parse(Login);
    if (flags.password !== undefined) {
      // never echo it back
      throw fail('EINVAL', 'login: --password/-p is refused: arguments are visible to every user of the host; use --password-stdin');
    }
    const tty = process.stdin.isTTY === true;
    let username = flags.username;
    let password: string;
    if (flags['password-stdin']) {
      if (username === undefined) throw fail('EINVAL', 'login: --password-stdin needs --username (-u)');
      password = await readStdinSecret();
    } else {
      if (!tty) throw fail('EINVAL', 'login: no password: pass it on stdin with --password-stdin, or run on a terminal');
      username ??= (await ask('Username: ')).trim();
      password = await ask('Password: ', true);
    }
    const r = await login(args.registry, username, password);
    process.stdout.write('Login Succeeded\n');
    if (flags['log-level'] === 'info' || flags['log-level'] === 'debug') process.stderr.write(`credentials for ${r.registry} stored in ${r.storedIn}\n`);
  }
}
