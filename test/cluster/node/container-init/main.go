// Command container-init is the last step of starting a process in a test-node
// container, the part runc's init does after the volume mounts: it mounts the
// container's /proc, enters the container's root (pivot_root), takes on the container's identity (supplementary groups,
// gid, capability bounding set, uid, capabilities, no_new_privs) with real
// system calls, and replaces itself with the command, so the kernel does every
// permission check and nothing of the node stays behind.
//
//	container-init --root=DIR --wd=DIR --uid=N --gid=N --groups=N,N \
//	    --caps=all|HEX [--no-new-privs] -- COMMAND [ARG...]
//
// --caps is a bit mask of capability numbers (bit 0 = CAP_CHOWN). A process
// with uid 0 gets exactly those as permitted and effective capabilities; any
// other uid gets none (the kernel clears them at setuid, as for a non-root
// container on containerd); either way the bounding set is the mask, so no
// execve can gain more. The command is looked up on the PATH of the
// environment inside the new root. Exit 127 when it is not found, 126 when it
// cannot be run, as runtimes report.
//
// Standard library only, so that it builds in seconds (CGO_ENABLED=0).
package main

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

func init() {
	// The bounding set, capabilities and no_new_privs are per thread: they must
	// be set on the thread that calls execve.
	runtime.LockOSThread()
}

const (
	prCapbsetDrop     = 24
	prSetNoNewPrivs   = 38
	linuxCapVersion3  = 0x20080522
	maxCapabilityBits = 64
)

type options struct {
	root, wd   string
	uid, gid   int
	groups     []int
	allCaps    bool
	caps       uint64
	noNewPrivs bool
	command    []string
}

func main() {
	opts, err := parseArgs(os.Args[1:])
	if err != nil {
		fail(2, "container-init: "+err.Error())
	}
	if err := enter(opts); err != nil {
		fail(1, "container-init: "+err.Error())
	}
	program := opts.command[0]
	resolved, found := lookPath(program, os.Getenv("PATH"))
	if !found {
		fail(127, `exec: "`+program+`": executable file not found in $PATH`)
	}
	err = syscall.Exec(resolved, opts.command, os.Environ())
	if err == syscall.ENOENT {
		fail(127, `exec: "`+program+`": executable file not found in $PATH`)
	}
	fail(126, `exec: "`+program+`": `+err.Error())
}

// enter puts the process into the container: /proc, root, working directory, then
// groups, bounding set and uid while it still holds the capabilities to set
// them, then the capabilities it keeps and no_new_privs.
func enter(o options) error {
	if err := mountProc(o.root + "/proc"); err != nil {
		return err
	}
	if err := pivotRoot(o.root); err != nil {
		return err
	}
	if err := syscall.Chdir(o.wd); err != nil {
		return wrap("chdir "+o.wd, err)
	}
	// An empty list clears the groups the node's process had (root's).
	if err := syscall.Setgroups(o.groups); err != nil {
		return wrap("setgroups", err)
	}
	if err := syscall.Setgid(o.gid); err != nil {
		return wrap("setgid", err)
	}
	if !o.allCaps {
		for c := 0; c < maxCapabilityBits; c++ {
			if o.caps&(1<<c) != 0 {
				continue
			}
			// EINVAL: beyond the kernel's last capability.
			if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prCapbsetDrop, uintptr(c), 0, 0, 0, 0); e != 0 && e != syscall.EINVAL {
				return wrap("drop capability "+strconv.Itoa(c)+" from the bounding set", e)
			}
		}
	}
	// Go >= 1.16 applies setuid to every thread of the process.
	if err := syscall.Setuid(o.uid); err != nil {
		return wrap("setuid", err)
	}
	if !o.allCaps || o.uid != 0 {
		keep := o.caps
		if o.uid != 0 {
			keep = 0
		}
		if err := capset(keep); err != nil {
			return wrap("capset", err)
		}
	}
	if o.noNewPrivs {
		if _, _, e := syscall.RawSyscall6(syscall.SYS_PRCTL, prSetNoNewPrivs, 1, 0, 0, 0, 0); e != 0 {
			return wrap("set no_new_privs", e)
		}
	}
	return nil
}

// What runc masks in /proc (the host's kernel details) and keeps read-only (its knobs).
var (
	procMasked   = []string{"acpi", "asound", "kcore", "keys", "latency_stats", "timer_list", "timer_stats", "sched_debug", "scsi"}
	procReadOnly = []string{"bus", "fs", "irq", "sys", "sysrq-trigger"}
)

// mountProc mounts a proc at `proc` (it shows the PID namespace the process
// is in) as runc does: nosuid, nodev, noexec, host details masked, knobs read-only.
func mountProc(proc string) error {
	const flags = syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC
	if err := syscall.Mount("proc", proc, "proc", flags, ""); err != nil {
		return wrap("mount proc on "+proc, err)
	}
	for _, name := range procMasked {
		path := proc + "/" + name
		var st syscall.Stat_t
		if syscall.Stat(path, &st) != nil {
			continue
		}
		var err error
		if st.Mode&syscall.S_IFMT == syscall.S_IFDIR {
			err = syscall.Mount("tmpfs", path, "tmpfs", flags|syscall.MS_RDONLY, "")
		} else {
			err = syscall.Mount("/dev/null", path, "", syscall.MS_BIND, "")
		}
		if err != nil {
			return wrap("mask "+path, err)
		}
	}
	for _, name := range procReadOnly {
		path := proc + "/" + name
		var st syscall.Stat_t
		if syscall.Stat(path, &st) != nil {
			continue
		}
		if err := syscall.Mount(path, path, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return wrap("bind "+path, err)
		}
		// A bind mount ignores MS_RDONLY; only a remount makes it read-only.
		if err := syscall.Mount(path, path, "", flags|syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY, ""); err != nil {
			return wrap("make "+path+" read-only", err)
		}
	}
	return nil
}

// pivotRoot makes `root` (a mount point, in a private mount namespace) the
// root and detaches the old one, as runc does: unlike chroot, nothing of the
// host's tree stays reachable, even for a process holding CAP_SYS_CHROOT.
func pivotRoot(root string) error {
	if err := syscall.Chdir(root); err != nil {
		return wrap("chdir "+root, err)
	}
	// With both arguments ".", the old root ends up stacked on the new one...
	if err := syscall.PivotRoot(".", "."); err != nil {
		return wrap("pivot_root "+root, err)
	}
	// ...from where a lazy unmount takes it away.
	if err := syscall.Unmount(".", syscall.MNT_DETACH); err != nil {
		return wrap("unmount the old root", err)
	}
	return wrap("chdir /", syscall.Chdir("/"))
}

// capset makes `caps` the thread's permitted and effective sets, with nothing inheritable.
func capset(caps uint64) error {
	header := struct {
		version uint32
		pid     int32
	}{linuxCapVersion3, 0}
	data := [2]struct{ effective, permitted, inheritable uint32 }{
		{uint32(caps), uint32(caps), 0},
		{uint32(caps >> 32), uint32(caps >> 32), 0},
	}
	if _, _, e := syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&header)), uintptr(unsafe.Pointer(&data[0])), 0); e != 0 {
		return e
	}
	return nil
}

// lookPath finds `program` as execve would be asked to: a name with a slash as
// it is (relative to the working directory), a bare name in the first PATH
// directory holding an executable file of that name.
func lookPath(program, path string) (string, bool) {
	if strings.Contains(program, "/") {
		return program, isExecutable(program)
	}
	for _, dir := range strings.Split(path, ":") {
		if dir == "" {
			dir = "."
		}
		candidate := dir + "/" + program
		if isExecutable(candidate) {
			return candidate, true
		}
	}
	return "", false
}

func isExecutable(file string) bool {
	var st syscall.Stat_t
	return syscall.Stat(file, &st) == nil && st.Mode&syscall.S_IFMT != syscall.S_IFDIR && st.Mode&0o111 != 0
}

func parseArgs(args []string) (options, error) {
	o := options{wd: "/"}
	seen := map[string]bool{}
	for i, arg := range args {
		if arg == "--" {
			o.command = args[i+1:]
			break
		}
		name, value, _ := strings.Cut(strings.TrimPrefix(arg, "--"), "=")
		seen[name] = true
		var err error
		switch name {
		case "root":
			o.root = value
		case "wd":
			o.wd = value
		case "uid":
			o.uid, err = strconv.Atoi(value)
		case "gid":
			o.gid, err = strconv.Atoi(value)
		case "groups":
			for _, g := range strings.Split(value, ",") {
				if g == "" {
					continue
				}
				n, e := strconv.Atoi(g)
				if e != nil {
					err = e
				}
				o.groups = append(o.groups, n)
			}
		case "caps":
			if value == "all" {
				o.allCaps = true
			} else {
				o.caps, err = strconv.ParseUint(value, 16, 64)
			}
		case "no-new-privs":
			o.noNewPrivs = true
		default:
			return o, errorString("unknown option " + arg)
		}
		if err != nil {
			return o, wrap("bad --"+name, err)
		}
	}
	for _, required := range []string{"root", "uid", "gid", "caps"} {
		if !seen[required] {
			return o, errorString("--" + required + " is required")
		}
	}
	if len(o.command) == 0 {
		return o, errorString("no command after --")
	}
	return o, nil
}

type errorString string

func (e errorString) Error() string { return string(e) }

// wrap prefixes err with what was being done; nil stays nil.
func wrap(what string, err error) error {
	if err == nil {
		return nil
	}
	return errorString(what + ": " + err.Error())
}

func fail(code int, message string) {
	os.Stderr.WriteString(message + "\n")
	os.Exit(code)
}
