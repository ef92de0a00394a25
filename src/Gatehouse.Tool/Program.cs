return await Gatehouse.Tool.CertificateCommands.RunAsync(args, Console.Out, Console.Error);
