// The package's TypeScript declarations (index.d.ts, elements.d.ts, errors.d.ts and the ones wasm-bindgen
// wrote, which include the types generated from the Rust types) compile with `tsc --strict`, and a program
// written against them type-checks (types/check.ts). The package is www/<PB_E2E_PKG> (default www/pkg).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, PKG, cleanup } from './lib.mjs';

const pkg = join(ROOT, 'www', PKG);
const dir = mkdtempSync(join(tmpdir(), 'pb-types-'));
const config = join(dir, 'tsconfig.json');
writeFileSync(config, JSON.stringify({
  compilerOptions: {
    strict: true, noEmit: true, target: 'ES2022', module: 'ES2022', moduleResolution: 'bundler',
    lib: ['ES2022', 'DOM', 'ESNext.Disposable'], types: [], skipLibCheck: false,
    paths: { '@protoblock/node': [join(pkg, 'index.d.ts')], '@protoblock/node/elements': [join(pkg, 'elements.d.ts')] },
  },
  files: [join(ROOT, 'tests/e2e/types/check.ts')],
}));
const tsc = join(ROOT, 'tests/e2e/node_modules/.bin/tsc');
const t0 = Date.now();
const res = spawnSync(tsc, ['-p', config], { encoding: 'utf8', timeout: 120_000 });
const ok = res.status === 0;
console.log(`test types::the_package_declarations_type_check_a_program_written_against_them ... ${ok ? 'ok' : 'FAILED'} (${Date.now() - t0} ms)`);
if (!ok) console.log(`  ${(res.stdout || '') + (res.stderr || '') || res.error}`);
console.log(`test result: ${ok ? 'ok' : 'FAILED'}. ${ok ? 1 : 0} passed; ${ok ? 0 : 1} failed; 0 ignored`);
rmSync(dir, { recursive: true, force: true });
cleanup();
process.exit(ok ? 0 : 1);
