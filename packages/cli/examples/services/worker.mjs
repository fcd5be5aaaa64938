// A worker that takes jobs from the api; `instances: 2` runs two, each with its id as the last argument.
import { ready, stopOnSigterm } from './ready.mjs';

const id = process.argv[process.argv.length - 1];
let jobs = 0;
stopOnSigterm(`worker ${id}`);
console.log(`worker ${id} started (pid ${process.pid})`);
ready();
setInterval(() => console.log(`worker ${id} finished job ${++jobs}`), 2000);
