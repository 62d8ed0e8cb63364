// Compiles every .py under a folder to bytecode for the Lambda runtime's Python, with Pyodide (CPython
// compiled to WebAssembly, from the npm registry): no native python3.13 is needed on the build machine.
//
// usage: node compile_bytecode.mjs <pyodide package folder> <folder> <path on Lambda> <python version>
//
// The .pyc files are unchecked-hash ones (PEP 552): the interpreter loads them without comparing them
// with the source's mtime, which the layer's zip and its extraction under /opt do not preserve. `/opt`
// is read-only on Lambda, so without them every cold start would compile the layer again.
import path from "node:path";
import { pathToFileURL } from "node:url";

const [pyodideFolder, folder, lambdaPath, wantedVersion] = process.argv.slice(2);
if (!wantedVersion) {
  console.error("usage: node compile_bytecode.mjs <pyodide folder> <folder> <path on Lambda> <python version>");
  process.exit(2);
}
const { loadPyodide } = await import(pathToFileURL(path.resolve(pyodideFolder, "pyodide.mjs")).href);
const pyodide = await loadPyodide({ stdout: (line) => console.log(line), stderr: (line) => console.error(line) });
pyodide.FS.mkdirTree("/build");
pyodide.FS.mount(pyodide.FS.filesystems.NODEFS, { root: path.resolve(folder) }, "/build");
pyodide.globals.set("lambda_path", lambdaPath);
pyodide.globals.set("wanted_version", wantedVersion);
const compiled = pyodide.runPython(`
import compileall, py_compile, sys

version = "%d.%d" % sys.version_info[:2]
if version != wanted_version:
    raise SystemExit(f"this Pyodide runs Python {version}, the runtime needs {wanted_version}")
ok = compileall.compile_dir(
    "/build",
    ddir=lambda_path,
    quiet=1,
    workers=1,
    invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
)
ok
`);
if (!compiled) {
  console.error(`some files under ${folder} did not compile`);
  process.exit(1);
}
