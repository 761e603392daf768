#!/usr/bin/env python3
"""Runs a command on a new pseudo-terminal (its controlling terminal, as a user's shell would), then
plays a script against it: {"expect": REGEX} waits for output, {"send": TEXT} types, {"resize":
[ROWS, COLS]} changes the window size (the kernel then sends SIGWINCH to the terminal's foreground
process group), {"sleep": SECONDS}. Prints everything the terminal showed, then "\nEXIT <status>".
Usage: ptydrive.py ROWS COLS SCRIPT_JSON -- COMMAND...   (used by test/e2e/run-options-tty.test.ts)"""
import fcntl, json, os, pty, re, select, struct, sys, termios, time

rows, cols, script = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
cmd = sys.argv[sys.argv.index('--') + 1:]
pid, fd = pty.fork()
if pid == 0:
    fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
    os.execvp(cmd[0], cmd)

out = b''
def pump(timeout):
    global out
    r, _, _ = select.select([fd], [], [], timeout)
    if not r:
        return False
    try:
        data = os.read(fd, 65536)
    except OSError:
        return None
    if not data:
        return None
    # answer a cursor position query (busybox's line editor sends one) as a terminal would
    for _ in range(data.count(b'\x1b[6n')):
        os.write(fd, b'\x1b[1;1R')
    out += data.replace(b'\x1b[6n', b'')
    return True

for step in script:
    if 'expect' in step:
        deadline = time.time() + step.get('timeout', 30)
        pat = re.compile(step['expect'].encode())
        start = step.get('from', 0)
        while not pat.search(out):
            if time.time() > deadline:
                sys.stdout.write(out.decode('utf8', 'replace'))
                sys.stdout.write('\nTIMEOUT waiting for %r\n' % step['expect'])
                # hang up, as a closed terminal would, so that tspod cleans up; SIGKILL if it does not end
                os.kill(pid, 1)
                for _ in range(100):
                    if os.waitpid(pid, os.WNOHANG)[0]:
                        sys.exit(3)
                    time.sleep(0.1)
                os.kill(pid, 9)
                sys.exit(3)
            if pump(0.2) is None:
                break
    elif 'send' in step:
        os.write(fd, step['send'].encode())
    elif 'resize' in step:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', step['resize'][0], step['resize'][1], 0, 0))
    elif 'sleep' in step:
        end = time.time() + step['sleep']
        while time.time() < end:
            pump(0.05)
deadline = time.time() + 30
while time.time() < deadline and pump(0.2) is not None:
    pass
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf8', 'replace'))
sys.stdout.write('\nEXIT %d\n' % (os.waitstatus_to_exitcode(status)))
