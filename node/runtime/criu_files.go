package runtime

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/checkpoint-restore/go-criu/v7/crit"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/fdinfo"
	"github.com/checkpoint-restore/go-criu/v7/crit/images/regfile"
)

// The workload's files and CRIU's file checks.
//
// CRIU reopens every file a process has open (and its cwd and root) by
// path, and on restore it refuses one that is not as it was at dump time:
// it must exist, its st_mode (type and permission bits) must equal the
// recorded one ("File … has bad mode 040700 (expect 040755)"), and, when
// the image records a size, so must its size ("File … has bad size N
// (expect M)"). CRIU records no size for a file open O_WRONLY|O_APPEND,
// which is how launch opens the log, but it does for any other opening
// (a workload that reopens its log, or a shell that holds it with <>),
// and then the size differs after every leave-running dump, because the
// workload goes on writing. On another host neither the log nor the
// workload directory exists at all. So before a restore,
// prepareWorkloadFiles makes the workload's own files what the image
// expects:
//
//   - directories at or under Workload.Dir (its cwd): created if missing,
//     permission bits set to the recorded ones;
//   - the log (Workload.LogPath), when the image has it open for writing:
//     missing: created, filled to the recorded size with a marker saying
//     the bytes stayed on the previous host;
//     longer than recorded: the whole file is kept as
//     output.log.<unix time> (the output written after the checkpoint stays
//     readable) and a new output.log holds its first N bytes;
//     shorter than recorded: padded with the marker;
//     then its permission bits set to the recorded ones.
//
// Nothing else is touched: other files are the workload's data, and
// padding or cutting them would corrupt it silently where CRIU's refusal
// is loud. Files outside Workload.Dir (the executable, its libraries,
// /dev/null, cgroup files the Go runtime holds open) must be the same on
// the target host; CRIU checks those too.

// imageFile is what a checkpoint recorded about one open regular file.
type imageFile struct {
	Path    string
	Size    int64 // -1 when CRIU recorded no size
	Mode    uint32
	Writing bool
}

// imageRegFiles lists the regular files in the checkpoint's files.img.
func imageRegFiles(imagesDir string) ([]imageFile, error) {
	f, err := os.Open(filepath.Join(imagesDir, "files.img"))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := crit.New(f, nil, "", false, true).Decode(&fdinfo.FileEntry{})
	if err != nil {
		return nil, fmt.Errorf("decoding files.img: %w", err)
	}
	var out []imageFile
	for _, e := range img.Entries {
		fe, ok := e.Message.(*fdinfo.FileEntry)
		if !ok || fe.GetType() != fdinfo.FdTypes_REG || fe.GetReg() == nil {
			continue
		}
		out = append(out, toImageFile(fe.GetReg()))
	}
	return out, nil
}

func toImageFile(r *regfile.RegFileEntry) imageFile {
	f := imageFile{Path: r.GetName(), Size: -1, Mode: r.GetMode()}
	if r.Size != nil {
		f.Size = int64(r.GetSize())
	}
	acc := r.GetFlags() & syscall.O_ACCMODE
	f.Writing = acc == syscall.O_WRONLY || acc == syscall.O_RDWR
	if !filepath.IsAbs(f.Path) {
		f.Path = "/" + f.Path
	}
	return f
}

// prepareWorkloadFiles makes the workload's directories and log what the
// checkpoint in imagesDir expects (see the comment at the top of this
// file). now names the copy kept of a longer log.
func prepareWorkloadFiles(imagesDir string, w Workload, now time.Time) error {
	files, err := imageRegFiles(imagesDir)
	if err != nil {
		return err
	}
	dir, logPath := filepath.Clean(w.Dir), filepath.Clean(w.LogPath())
	log := imageFile{Path: logPath, Size: -1}
	found := false
	for _, f := range files {
		p := filepath.Clean(f.Path)
		switch {
		case f.Mode&syscall.S_IFMT == syscall.S_IFDIR && (p == dir || strings.HasPrefix(p, dir+"/")):
			if err := os.MkdirAll(p, 0o700); err != nil {
				return err
			}
			if err := syscall.Chmod(p, f.Mode&0o7777); err != nil {
				return err
			}
		case p == logPath && f.Writing:
			// stdout and stderr share one entry; other openings may add
			// more, and only those record a size.
			found = true
			log.Mode = f.Mode
			log.Size = max(log.Size, f.Size)
		}
	}
	if !found {
		return nil
	}
	return fixFile(log, now)
}

// fixFile brings the file at f.Path to f's size and permission bits.
func fixFile(f imageFile, now time.Time) error {
	st, err := os.Lstat(f.Path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		err = createPadded(f.Path, f.Size)
	case err != nil:
		return err
	case !st.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file (%s)", f.Path, st.Mode().Type())
	case f.Size < 0 || st.Size() == f.Size:
	case st.Size() > f.Size:
		err = cutKeepingRest(f.Path, f.Size, now)
	default:
		err = pad(f.Path, f.Size)
	}
	if err != nil {
		return fmt.Errorf("making %s as the checkpoint recorded it: %w", f.Path, err)
	}
	if f.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil
	}
	return syscall.Chmod(f.Path, f.Mode&0o7777)
}

// createPadded creates path (and its directory) filled with the marker
// to size bytes (empty when no size was recorded).
func createPadded(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if size > 0 {
		err = writeFiller(f, size)
	}
	return errors.Join(err, f.Close())
}

// pad appends the marker to path until it is size bytes long.
func pad(path string, size int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	st, err := f.Stat()
	if err == nil {
		_, err = f.Seek(st.Size(), io.SeekStart)
	}
	if err == nil {
		err = writeFiller(f, size-st.Size())
	}
	return errors.Join(err, f.Close())
}

// cutKeepingRest keeps the whole of path as path.<unix time> and replaces
// path with a copy of its first size bytes. The new file is written aside
// and renamed into place, so path always exists.
func cutKeepingRest(path string, size int64, now time.Time) error {
	keep := path + "." + strconv.FormatInt(now.Unix(), 10)
	if _, err := os.Lstat(keep); err == nil {
		keep += "." + strconv.FormatInt(now.UnixNano(), 10)
	}
	src, err := os.Open(path)
	if err != nil {
		return err
	}
	defer src.Close()
	tmp := path + ".lifeboat-tmp"
	dst, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	_, err = io.CopyN(dst, src, size) // copy_file_range where the kernel can
	if err = errors.Join(err, dst.Close()); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Link(path, keep); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// fillerDense is how much of a gap is written out as text; past it the
// gap is left as a hole (reads as NUL bytes, takes no disk), so a restore
// never writes gigabytes to stand in for a log left on another host.
const fillerDense = 1 << 20

// writeFiller writes n bytes at f's offset: a line saying that n bytes of
// log stayed on the previous host, then spaces, truncated to fit, ending
// in a newline; beyond fillerDense a hole with a final newline.
func writeFiller(f *os.File, n int64) error {
	line := fmt.Sprintf("lifeboat: %d bytes of log written on the previous host are not here\n", n)
	dense := min(n, fillerDense)
	buf := make([]byte, dense)
	for i := range buf {
		buf[i] = ' '
	}
	copy(buf, line)
	if dense > int64(len(line)) {
		buf[dense-1] = '\n'
	}
	if _, err := f.Write(buf); err != nil {
		return err
	}
	if n == dense {
		return nil
	}
	if _, err := f.Seek(n-dense-1, io.SeekCurrent); err != nil {
		return err
	}
	_, err := f.Write([]byte{'\n'})
	return err
}
