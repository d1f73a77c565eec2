#!/usr/bin/env node
// First, before oclif and the commands allocate anything (see src/heap.ts).
import {keepHeapSmall} from '../dist/heap.js'

keepHeapSmall()
const {execute} = await import('@oclif/core')
await execute({dir: import.meta.url})
