/** docker's "Are you sure you want to continue? [y/N]" for prune commands (-f/--force skips it). */
export async function confirm(warning: string): Promise<boolean> {
  process.stderr.write(`${warning}\nAre you sure you want to continue? [y/N] `);
  const answer = await new Promise<string>((resolve) => {
    let buf = '';
    const onData = (d: Buffer | string): void => {
      buf += d.toString();
      if (buf.includes('\n')) done();
    };
    const done = (): void => {
      process.stdin.off('data', onData);
      process.stdin.off('end', done);
      process.stdin.pause();
      resolve(buf.split('\n')[0]!.trim());
    };
    process.stdin.on('data', onData);
    process.stdin.on('end', done);
    process.stdin.resume();
  });
  process.stderr.write('\n');
  return /^y(es)?$/i.test(answer);
}
