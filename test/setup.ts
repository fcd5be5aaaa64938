// Runs in every test file: a test that leaves a zombie child of the test process fails.
import { afterEach, expect } from 'vitest';
import { zombieChildren } from './helpers.js';

afterEach(() => {
  expect(zombieChildren(), 'zombie children of the test process').toEqual([]);
});
