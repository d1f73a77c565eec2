#!/usr/bin/env node
// First, before oclif and the commands allocate anything (see src/heap.ts).
import {keepYoungGenerationSmall} from '../dist/heap.js'

keepYoungGenerationSmall()
const {execute} = await import('@oclif/core')
await execute({dir: import.meta.url})
