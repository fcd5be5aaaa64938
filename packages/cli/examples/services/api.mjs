// An api in front of the store: started once the store is ready, stopped before it.
import { ready, stopOnSigterm } from './ready.mjs';

stopOnSigterm('api');
console.log(`api listening (pid ${process.pid}, store is up)`);
ready();
setInterval(() => {}, 1 << 30);
