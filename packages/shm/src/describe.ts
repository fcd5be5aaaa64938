// Renders any value for an error message: never throws (symbols, bigints, cyclic objects) and never dumps a
// huge string whole.
/** A short, safe rendering of any value for an error message (never the whole of a huge string). */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string':
      return value.length > 40 ? `a string of ${value.length} characters` : JSON.stringify(value);
    case 'bigint':
      return `the bigint ${value.toString().slice(0, 30)}n`;
    case 'symbol':
      return 'a symbol';
    case 'function':
      return 'a function';
    case 'object':
      if (value === null) return 'null';
      if (Array.isArray(value)) return `an array of ${value.length}`;
      return `an object (${Object.prototype.toString.call(value).slice(8, -1)})`;
    default:
      return String(value);
  }
}

