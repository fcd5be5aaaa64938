// Every command: --help with an example (exit 0), usage errors as one line with exit code 2, completion scripts.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { cli } from './support.js';

const COMMANDS = [['ls'], ['gc'], ['watch'], ['shm'], ['shm', 'ls'], ['shm', 'clean'], ['run'], ['ps'], ['logs'], ['completion']];

describe('libipc usage', () => {
  it('--help of every command shows an example and exits 0', async () => {
    const results = await Promise.all(COMMANDS.map((c) => cli([...c, '--help'])));
    results.forEach((r, i) => {
      expect(r.code, COMMANDS[i]!.join(' ')).toBe(0);
      expect(r.stdout, COMMANDS[i]!.join(' ')).toMatch(/Example/);
      expect(r.stdout).toMatch(/\$ libipc /);
    });
    const top = await cli(['--help']);
    expect(top.code).toBe(0);
    for (const c of ['ls', 'gc', 'watch', 'shm', 'run', 'ps', 'logs', 'completion']) expect(top.stdout).toContain(c);
    expect((await cli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it('usage errors exit 2 with one line that says what to do', async () => {
    const cases = [['bogus'], ['ls', '--jsn'], ['logs', '--dir', 'x'], ['logs', 'x', '--lines', 'abc'], ['run'], ['ls', '--domain', 'a/b'], ['completion', 'fish'], []];
    const results = await Promise.all(cases.map((c) => cli(c)));
    results.forEach((r, i) => {
      expect(r.code, cases[i]!.join(' ')).toBe(2);
      if (cases[i]!.length > 0) {
        expect(r.stderr.trim().split('\n'), cases[i]!.join(' ')).toHaveLength(1);
        expect(r.stderr).toMatch(/libipc/);
      }
    });
    expect(results[0]!.stderr).toMatch(/unknown command 'bogus'/);
    expect(results[1]!.stderr).toMatch(/Did you mean --json/);
  });

  it('a failure exits 1 with one line and an error code', async () => {
    const r = await cli(['ls', '--domain', 'no-such-domain-here']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/ERR_LIBIPC_NOT_FOUND/);
    const ps = await cli(['ps', '--store', '/nonexistent/x.db']);
    expect(ps.code).toBe(1);
    expect(ps.stderr).toMatch(/no store at/);
  });

  it('completion scripts for bash and zsh', async () => {
    const bash = await cli(['completion', 'bash']);
    expect(bash.code).toBe(0);
    expect(bash.stdout).toMatch(/complete -F _libipc libipc/);
    execFileSync('bash', ['-n'], { input: bash.stdout }); // it parses
    const words = execFileSync('bash', ['-c', `${bash.stdout}\nCOMP_WORDS=(libipc sh); COMP_CWORD=1; _libipc; echo "\${COMPREPLY[@]}"`]).toString();
    expect(words.trim()).toBe('shm');
    const sub = execFileSync('bash', ['-c', `${bash.stdout}\nCOMP_WORDS=(libipc shm c); COMP_CWORD=2; _libipc; echo "\${COMPREPLY[@]}"`]).toString();
    expect(sub.trim()).toBe('clean');
    const zsh = await cli(['completion', 'zsh']);
    expect(zsh.code).toBe(0);
    expect(zsh.stdout).toMatch(/^#compdef libipc/);
  });
});
