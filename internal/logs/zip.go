package logs

import (
	"archive/zip"
	"bufio"
	"io"
	"time"
)

// WriteZip writes to w a zip holding app's kept log files as one text file,
// APP.log, oldest line first, with the lines keep accepts. An error may
// come after part of the zip is written.
func (h *Hub) WriteZip(w io.Writer, app string, keep func(Line) bool) error {
	zw := zip.NewWriter(w)
	f, err := zw.CreateHeader(&zip.FileHeader{Name: app + ".log", Method: zip.Deflate, Modified: time.Now()})
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 64<<10)
	err = h.ReadFiles(app, keep, func(l Line) error {
		bw.WriteString(l.Format())
		return bw.WriteByte('\n')
	})
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = zw.Close()
	}
	return err
}
