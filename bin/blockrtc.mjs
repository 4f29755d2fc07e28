#!/usr/bin/env node
// The command runs the TypeScript sources directly through tsx's loader so that the
// same files serve development, tests and production images (no separate build output).
import { register } from 'tsx/esm/api';

register();
await import('../cli/main.ts');
