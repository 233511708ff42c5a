// @connectrpc/connect's type declarations name the fetch type `HeadersInit`, which lib "DOM" declares
// globally but @types/node 20 does not (it declares only `Headers`). Declared here, with undici's shape,
// so that this Node build needs neither lib "DOM" nor skipLibCheck. Not emitted, not published.
type HeadersInit = string[][] | Record<string, string | ReadonlyArray<string>> | Headers;
