/**
 * Reading a login's username and password without them ever being process arguments: from stdin
 * (`--password-stdin`), or asked on the terminal with echo off.
 */
import { createInterface } from 'node:readline';

/** All of stdin, without the final line break (as `docker login --password-stdin` does). */
export async function readStdinSecret(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

/** Asks on the terminal (stdin must be a TTY); `secret` turns the echo off. */
export function ask(question: string, secret = false): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    if (secret) {
      // readline echoes through _writeToOutput: print the question, swallow the typed characters
      const r = rl as unknown as { _writeToOutput: (s: string) => void; output: NodeJS.WritableStream };
      let asked = false;
      r._writeToOutput = (s: string) => {
        if (!asked) { asked = true; process.stderr.write(s); }
      };
    }
    rl.once('SIGINT', () => { rl.close(); process.stderr.write('\n'); reject(Object.assign(new Error('interrupted'), { code: 'EINTR' })); });
    rl.question(question, (answer) => {
      rl.close();
      if (secret) process.stderr.write('\n');
      resolve(answer);
    });
  });
}
