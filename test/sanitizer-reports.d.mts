/** Whether one sanitizer report block (a leak or an error with its stack) is libipc's to fix. */
export function isOurs(block: string): boolean;
/** The blocks of every report file in `dir` that are libipc's to fix. */
export function ourReports(dir: string): string[];
