"""Reading (and writing) DICOM RT objects. Everything here uses pydicom; nothing is hand-parsed."""
