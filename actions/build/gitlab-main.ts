// The GitLab CI entry (`ct-gitlab build|verify|deploy|promote`, dist/gitlab/index.js): gitlab.ts's main with this process's arguments.
import { main } from './gitlab.js';

await main(process.argv.slice(2), process.env);
