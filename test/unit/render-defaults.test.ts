import { it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { renderTidingsProperties } from '../../src/config/render-defaults.js';

it('config/tidings.properties lists every tidings.* key exactly as the schema documents it', () => {
  const shipped = readFileSync(new URL('../../../config/tidings.properties', import.meta.url), 'utf8');
  assert.equal(shipped, renderTidingsProperties(), 'regenerate it: node -e "import(\'./dist/src/config/render-defaults.js\').then(m=>process.stdout.write(m.renderTidingsProperties()))" > config/tidings.properties');
});
